// Package cligen makes a program's shell completion and man pages from the
// same command table its --help prints, so that the three cannot drift.
//
// A [Program] lists its [Command]s, each with its synopsis, usage line,
// description, exit status text and pflag.FlagSet, the one the command
// parses. From it:
//
//   - [Program.Complete] answers the hidden `PROG __complete WORD...`
//     request that the scripts of [Script] (bash, zsh, fish) send on each
//     TAB: commands, subcommands, every flag of the command, flag values
//     and positional arguments;
//   - [Program.WriteMan] writes PROG(1) and PROG-COMMAND(1) in roff.
//
// Invariants: the flags completed and documented for a command are those
// of its FlagSet (hidden and deprecated ones left out), no others; the
// positional arguments are read from the usage line, whose upper-case
// words name them (CONTAINER, IMAGE, FILE..., a trailing "..." repeats
// the last) and whose a|b|c words list literal choices, up to the first
// top-level "|"; a bracketed group of upper-case words alone ("[ARG...]")
// is optional and positional, one with a flag ("[-e K=V]") is not. The
// completion scripts hold no command or flag names: they
// ask the program, so a flag added to a command completes without
// regenerating them.
package cligen
