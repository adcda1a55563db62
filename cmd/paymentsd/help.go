package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/payments-platform/payments/internal/config"
)

// command is a subcommand as --help and the general usage describe it.
type command struct {
	name  string      // as typed: "serve", "admin create"
	args  string      // its arguments after the name, for the usage line
	mode  config.Mode // the configuration it reads
	short string      // one line for the list of commands
	about string      // what it does, for its own --help
}

// paymentsd's subcommands.
var (
	cmdDev = command{name: "dev", mode: config.ModeDev,
		short: "run everything in one process: SQLite, the sandbox gateway, a Temporal dev server with its UI, a worker and the API",
		about: `Runs the whole platform in one process on defaults that need no setup: a SQLite
database, the sandbox gateway, a Temporal dev server with its UI (unless one
already listens at TEMPORAL_ADDRESS, which it then uses), a worker and the API.
It prints its addresses when it is ready. Its state lives under
PAYMENTS_DATA_DIR, so a restart keeps accounts and workflows. Ctrl-C (or
SIGTERM) drains in-flight requests, then stops the worker and the dev server.`}
	cmdServe = command{name: "serve", mode: config.ModeServe,
		short: "run the API only",
		about: `Runs the API alone: Connect, gRPC and gRPC-Web on PAYMENTS_HTTP_ADDR, with
GET /healthz and GET /readyz there and on PAYMENTS_ADMIN_ADDR. Temporal is
dialled lazily, so the API starts during a Temporal outage and /readyz
reports it. On MySQL, run migrate first.`}
	cmdWorker = command{name: "worker", mode: config.ModeWorker,
		short: "run the Temporal worker only",
		about: `Runs the Temporal worker alone, until interrupted: the workflows of payments,
refunds, disputes, webhooks, emails and maintenance, and their activities,
calling the gateway PAYMENTS_GATEWAY names. Its probes, GET /healthz and
GET /readyz, are on PAYMENTS_ADMIN_ADDR. On SIGTERM it stops polling and
lets running activities finish. On MySQL, run migrate first.`}
	cmdMigrate = command{name: "migrate", mode: config.ModeMigrate,
		short: "create or update the database schema",
		about: `Creates or updates the database schema of DATABASE_URL (by default the dev
SQLite database), then fills in the transaction history of rows that predate
it. Run it before serve and worker on MySQL; dev migrates by itself.`}
	cmdProbe = command{name: "probe", args: "URL",
		short: "GET a health URL and exit 0 if it answers 2xx: a container's health check",
		about: `GETs URL (within 3 seconds) and exits 0 if it answers 2xx, 1 otherwise,
saying what it got. The image is distroless (no shell, no curl), so this is
the health check a container runs, for instance
  paymentsd probe http://127.0.0.1:9090/readyz
against the admin address (PAYMENTS_ADMIN_ADDR) of serve or worker.`}
	cmdAdminCreate = command{name: "admin create", args: "--email E --password-stdin [--display-name N]", mode: config.ModeAdmin,
		short: "create an admin account, its password read from standard input",
		about: `Creates an admin account (admins cannot register through the API), its email
verified. The password is the first line of standard input, at least 12
characters. On a SQLite database (the dev one by default) it migrates the
schema first.`}
)

// commands are paymentsd's subcommands, in the order the usage lists them.
var commands = []command{cmdDev, cmdServe, cmdWorker, cmdMigrate, cmdAdminCreate, cmdProbe}

// usage is paymentsd's own help: its commands and every variable.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: paymentsd <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.short)
	}
	b.WriteString(`
flags:
  -h, --help     show this help; paymentsd <command> --help shows a command's
                 flags and the environment variables it reads

Exit codes: 0 done, 1 failed (the message names the variable at fault),
2 bad command line.

environment (also read from a .env file in the working directory; the real
environment wins):
`)
	for _, v := range config.Vars {
		line := "  " + v.Name
		var notes []string
		if d := v.DefaultText(); d != "" {
			notes = append(notes, "default "+config.Plain(d))
		}
		if r := v.RequiredText(); r != "" {
			notes = append(notes, "required by "+r)
		}
		if len(notes) > 0 {
			line += " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintf(&b, "%s\n      %s\n", line, config.Plain(v.Doc))
	}
	return b.String()
}

// writeHelp writes the help of c: what it does, its flags (those of fs
// besides -h), and the variables it reads in its mode, required ones first.
func writeHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: paymentsd %s", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n\nflags:\n", c.about)
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(w, "  --%s%s\n      %s\n", f.Name, arg, text)
	})
	fmt.Fprintf(w, "  -h, --help\n      show this help\n")
	if c.mode == "" {
		fmt.Fprintf(w, "\nenvironment: none\n")
		return
	}
	fmt.Fprintf(w, "\nenvironment (also read from a .env file in the working directory; the real\nenvironment wins):\n")
	vars := config.VarsOf(c.mode)
	for _, required := range []bool{true, false} {
		for _, v := range vars {
			if v.RequiredIn(c.mode) != required {
				continue
			}
			state := "required"
			if !required {
				state = "default " + config.Plain(v.DefaultFor(c.mode))
				if v.DefaultFor(c.mode) == "" {
					state = "unset by default"
				}
			}
			fmt.Fprintf(w, "  %s (%s)\n      %s\n", v.Name, state, config.Plain(v.Doc))
		}
	}
}

// parseFlags parses the flags of c. Asked for help (-h, --help), it
// writes c's help to stdout and returns flag.ErrHelp, which run turns
// into exit code 0; other mistakes are usage errors.
func parseFlags(c command, fs *flag.FlagSet, args []string, e env) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeHelp(e.stdout, c, fs)
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

// noArgs parses the arguments of a command that takes none but --help.
func noArgs(c command, args []string, e env) error {
	return parseFlags(c, flag.NewFlagSet(c.name, flag.ContinueOnError), args, e)
}
