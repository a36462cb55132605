// Package sysdeps has no code of its own: its tests keep README.md's table
// of the system packages `make deps` may install and scripts/deps.sh in
// step. Every package name deps.sh can print in its plan (`deps.sh --plan`)
// must be in that table, with the reason it is there.
package sysdeps
