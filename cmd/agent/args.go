package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves a subcommand's flags ahead of its arguments, so that
// `agent logs ID -f` works as kubectl users type it (urfave/cli stops at
// the first argument). A flag's value stays with it; everything after
// "--" is left as it is.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) > 0 && args[len(args)-1] == completionFlag {
		return args // urfave/cli completes the words as typed
	}
	for i := 1; i < len(args); i++ {
		cmd := app.Command(args[i])
		if cmd == nil {
			if strings.HasPrefix(args[i], "-") {
				if takesValue(app.Flags, args[i]) {
					i++ // a flag of the app itself, and its value
				}
				continue
			}
			return args
		}
		var flags, positional []string
		rest := args[i+1:]
		for j := 0; j < len(rest); j++ {
			a := rest[j]
			if a == "--" {
				positional = append(positional, rest[j:]...)
				break
			}
			if !strings.HasPrefix(a, "-") || a == "-" {
				positional = append(positional, a)
				continue
			}
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		}
		out := slices.Clone(args[:i+1])
		return append(append(out, flags...), positional...)
	}
	return args
}

// takesValue reports whether the flag token a (without "=value") names
// one of flags that is not a boolean.
func takesValue(flags []cli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			_, isBool := f.(*cli.BoolFlag)
			return !isBool
		}
	}
	return false
}
