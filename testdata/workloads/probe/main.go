// Command probe is a test workload of ckpt: it prints what a container's
// process sees of itself, so tests can check run's and exec's flags from
// inside the container (the image has no shell, id or hostname).
//
// Usage:
//
//	probe id          uid=U gid=G groups=G1,G2 (as the process has them)
//	probe pwd         the working directory
//	probe hostname    the host name (uname)
//	probe env NAME... NAME=VALUE of each variable set
//	probe cat FILE    the file's content
//
// Exit status: 0, or 1 on an error, 2 on a usage error.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: probe id|pwd|hostname|env NAME...|cat FILE")
		return 2
	}
	switch args[0] {
	case "id":
		groups, err := os.Getgroups()
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		var g []string
		for _, x := range groups {
			g = append(g, fmt.Sprint(x))
		}
		fmt.Printf("uid=%d gid=%d groups=%s\n", os.Getuid(), os.Getgid(), strings.Join(g, ","))
	case "pwd":
		d, err := os.Getwd()
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		fmt.Println(d)
	case "hostname":
		h, err := os.Hostname()
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		fmt.Println(h)
	case "env":
		for _, n := range args[1:] {
			if v, ok := os.LookupEnv(n); ok {
				fmt.Printf("%s=%s\n", n, v)
			}
		}
	case "cat":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: probe cat FILE")
			return 2
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		os.Stdout.Write(data)
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown command %q\n", args[0])
		return 2
	}
	return 0
}
