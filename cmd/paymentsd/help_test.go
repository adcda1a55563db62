package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/config"
)

// Every command answers --help (and -h) with what it does, its flags and
// the variables its mode reads, each with its default or "(required)", on
// standard output with exit code 0, touching nothing else.
func TestHelp(t *testing.T) {
	cases := []struct {
		args  []string
		usage string
		mode  config.Mode
		flags []string
	}{
		{[]string{"dev", "--help"}, "usage: paymentsd dev", config.ModeDev, nil},
		{[]string{"dev", "-h"}, "usage: paymentsd dev", config.ModeDev, nil},
		{[]string{"serve", "--help"}, "usage: paymentsd serve", config.ModeServe, nil},
		{[]string{"worker", "--help"}, "usage: paymentsd worker", config.ModeWorker, nil},
		{[]string{"migrate", "--help"}, "usage: paymentsd migrate", config.ModeMigrate, nil},
		{[]string{"admin", "--help"}, "usage: paymentsd admin create", config.ModeAdmin, []string{"--email", "--password-stdin", "--display-name"}},
		{[]string{"admin", "create", "--help"}, "usage: paymentsd admin create", config.ModeAdmin, []string{"--email", "--password-stdin", "--display-name"}},
		{[]string{"admin", "create", "--email", "a@example.com", "-h"}, "usage: paymentsd admin create", config.ModeAdmin, []string{"--email"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCmd(context.Background(), nil, "", tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, tc.usage+" ") && !strings.HasPrefix(r.stdout, tc.usage+"\n") {
				t.Errorf("help does not start with %q:\n%s", tc.usage, r.stdout)
			}
			for _, want := range append([]string{"flags:\n", "-h, --help", "environment"}, tc.flags...) {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("help lacks %q:\n%s", want, r.stdout)
				}
			}
			for _, v := range config.Vars {
				listed := strings.Contains(r.stdout, "  "+v.Name+" (")
				switch {
				case !v.ReadIn(tc.mode) && listed:
					t.Errorf("%s is listed, but %s does not read it", v.Name, tc.mode)
				case !v.ReadIn(tc.mode):
				case v.RequiredIn(tc.mode) && !strings.Contains(r.stdout, "  "+v.Name+" (required)\n"):
					t.Errorf("%s is not listed as required:\n%s", v.Name, r.stdout)
				case !v.RequiredIn(tc.mode) && v.DefaultFor(tc.mode) != "" &&
					!strings.Contains(r.stdout, "  "+v.Name+" (default "+config.Plain(v.DefaultFor(tc.mode))+")\n"):
					t.Errorf("%s is not listed with its default %q:\n%s", v.Name, v.DefaultFor(tc.mode), r.stdout)
				case !listed:
					t.Errorf("%s is not listed:\n%s", v.Name, r.stdout)
				}
			}
		})
	}
}

// paymentsd's own help lists the commands and every variable, with the
// modes that require it.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runCmd(context.Background(), nil, "", args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%v: exit code %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
		}
		for _, c := range commands {
			if !strings.Contains(r.stdout, "  "+c.name+" ") {
				t.Errorf("%v: usage lacks the command %s:\n%s", args, c.name, r.stdout)
			}
		}
		for _, v := range config.Vars {
			if !strings.Contains(r.stdout, "  "+v.Name) {
				t.Errorf("%v: usage lacks %s", args, v.Name)
			}
			if req := v.RequiredText(); req != "" && !strings.Contains(r.stdout, "required by "+req) {
				t.Errorf("%v: usage does not say %s is required by %s", args, v.Name, req)
			}
		}
	}
}

// The variables serve and worker require are the same in their --help, in
// their refusal to start without them, and in config.Required.
func TestRequiredVariablesAgree(t *testing.T) {
	requiredInHelp := regexp.MustCompile(`(?m)^  ([A-Z_]+) \(required\)$`)
	for _, mode := range []config.Mode{config.ModeServe, config.ModeWorker} {
		var want []string
		for _, v := range config.Required(mode) {
			want = append(want, v.Name)
		}
		help := runCmd(context.Background(), nil, "", string(mode), "--help")
		var listed []string
		for _, m := range requiredInHelp.FindAllStringSubmatch(help.stdout, -1) {
			listed = append(listed, m[1])
		}
		if !slices.Equal(listed, want) {
			t.Errorf("%s --help lists %v as required, want %v", mode, listed, want)
		}
		r := runCmd(context.Background(), map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}, "", string(mode))
		if r.code != 1 {
			t.Fatalf("%s with nothing set: exit code %d, want 1; stderr:\n%s", mode, r.code, r.stderr)
		}
		sentence := "paymentsd " + string(mode) + " requires " + config.Plain(config.RequiredSentence(mode))
		if !strings.Contains(r.stderr, sentence) {
			t.Errorf("%s's refusal lacks %q:\n%s", mode, sentence, r.stderr)
		}
		for _, name := range want {
			if !strings.Contains(r.stderr, name+": required by "+string(mode)) {
				t.Errorf("%s's refusal does not name %s:\n%s", mode, name, r.stderr)
			}
		}
	}
}
