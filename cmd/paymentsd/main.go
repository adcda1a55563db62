// Command paymentsd is the payment platform in one binary: `dev` runs
// everything locally on embedded defaults; `serve` and `worker` run the API
// and the Temporal worker separately; `migrate` applies the schema; `admin
// create` makes an admin account.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/payments-platform/payments/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := config.LoadDotEnv(".env"); err != nil {
		fmt.Fprintf(os.Stderr, "paymentsd: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// env is the process's surroundings, injected so tests can run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return 2
	}
	var err error
	switch args[0] {
	case "dev":
		err = runDev(ctx, args[1:], e)
	case "serve":
		err = runServe(ctx, args[1:], e)
	case "worker":
		err = runWorker(ctx, args[1:], e)
	case "migrate":
		err = runMigrate(ctx, args[1:], e)
	case "admin":
		err = runAdmin(ctx, args[1:], e)
	case "probe":
		err = runProbe(ctx, args[1:], e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage())
		return 0
	default:
		fmt.Fprintf(e.stderr, "paymentsd: unknown command %q\n\n%s", args[0], usage())
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		// The command printed its help, as asked.
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "paymentsd %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(e.stderr, "paymentsd %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError marks bad command-line use (exit code 2).
type usageError struct{ error }

func newLogger(w io.Writer, json bool, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
