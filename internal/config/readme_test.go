package config

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/devserver"
)

// readme is the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeRow is one row of README.md's configuration table.
type readmeRow struct {
	name, def, required, doc string
}

// configurationTable reads the table of README.md's "## Configuration"
// section: | `NAME` | default | required by | what it does |.
func configurationTable(t *testing.T, text string) []readmeRow {
	t.Helper()
	_, section, ok := strings.Cut(text, "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []readmeRow
	header := true
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		if header || strings.HasPrefix(line, "|---") {
			header = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 4 {
			t.Fatalf("README.md configuration row of %d cells, want 4 (variable, default, required by, description): %s", len(cells), line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, readmeRow{strings.Trim(cells[0], "`"), cells[1], cells[2], cells[3]})
	}
	return rows
}

// The README's configuration table lists the variables of Vars, in its
// order, with the defaults and the modes that require them that Vars says
// (the descriptions are the README's own), and its commands table names the
// variables serve and worker require: neither can drift from what the
// program does. A failure prints the rows README.md should have.
func TestREADMEConfigurationTable(t *testing.T) {
	text := readme(t)
	rows := configurationTable(t, text)
	docs := map[string]string{}
	for _, r := range rows {
		docs[r.name] = r.doc
	}
	var want []readmeRow
	for _, v := range Vars {
		doc, ok := docs[v.Name]
		if !ok {
			doc = v.Doc
		}
		want = append(want, readmeRow{v.Name, v.DefaultText(), v.RequiredText(), doc})
	}
	if !slices.Equal(rows, want) {
		var b strings.Builder
		for _, r := range want {
			b.WriteString("| `" + r.name + "` | " + r.def + " | " + r.required + " | " + r.doc + " |\n")
		}
		t.Errorf("README.md's configuration table differs from config.Vars; its rows should be:\n%s", b.String())
	}
	for _, mode := range []Mode{ModeServe, ModeWorker} {
		prefix := "| `paymentsd " + string(mode) + "` |"
		i := strings.Index(text, prefix)
		if i < 0 {
			t.Errorf("README.md's commands table has no row %s", prefix)
			continue
		}
		line, _, _ := strings.Cut(text[i:], "\n")
		if want := RequiredSentence(mode) + " required"; !strings.Contains(line, want) {
			t.Errorf("README.md's row of paymentsd %s does not say %q:\n%s", mode, want, line)
		}
	}
}

// FromEnv reads every variable of Vars and no other (PAYMENTS_TEMPORAL_CLI
// is read where the dev server is started, by internal/devserver).
func TestFromEnvReadsVars(t *testing.T) {
	read := map[string]bool{}
	for _, mode := range Modes {
		_, _ = FromEnv(mode, func(name string) string {
			read[name] = true
			if name == "PAYMENTS_DATA_DIR" {
				return t.TempDir()
			}
			return ""
		})
	}
	for name := range read {
		if _, ok := LookupVar(name); !ok {
			t.Errorf("FromEnv reads %s, which config.Vars lacks", name)
		}
	}
	for _, v := range Vars {
		if !read[v.Name] && v.Name != devserver.EnvCLI {
			t.Errorf("config.Vars lists %s, which FromEnv never reads", v.Name)
		}
	}
	if _, ok := LookupVar(devserver.EnvCLI); !ok {
		t.Errorf("config.Vars lacks %s, which paymentsd dev reads", devserver.EnvCLI)
	}
}

// Each mode refuses a start without the variables Vars says it requires,
// naming each one and then all of them.
func TestRequiredVarsAreRefusedByName(t *testing.T) {
	for _, mode := range Modes {
		required := Required(mode)
		_, err := FromEnv(mode, envOf(map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}))
		if len(required) == 0 {
			if err != nil {
				t.Errorf("%s requires nothing, yet refused to start: %v", mode, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s started without %s", mode, Plain(RequiredSentence(mode)))
		}
		for _, v := range required {
			if !strings.Contains(err.Error(), v.Name+": required by "+string(mode)) {
				t.Errorf("%s's refusal does not name %s:\n%v", mode, v.Name, err)
			}
		}
		if want := "paymentsd " + string(mode) + " requires " + Plain(RequiredSentence(mode)); !strings.Contains(err.Error(), want) {
			t.Errorf("%s's refusal does not say %q:\n%v", mode, want, err)
		}
	}
}

// The texts of the table read as the README shows them.
func TestVarTexts(t *testing.T) {
	for name, want := range map[string]string{
		"PAYMENTS_HTTP_ADDR":              "`127.0.0.1:8080`",
		"PAYMENTS_TLS_CERT":               "",
		"DATABASE_URL":                    "SQLite `PAYMENTS_DATA_DIR/payments.db` in dev, migrate and admin",
		"PAYMENTS_GATEWAY":                "`sandbox` in dev",
		"PAYMENTS_WEBHOOK_ALLOW_INSECURE": "`true` in dev, `false` in serve and worker",
	} {
		if got := varNamed(name).DefaultText(); got != want {
			t.Errorf("%s: default %q, want %q", name, got, want)
		}
	}
	if got := varNamed("DATABASE_URL").RequiredText(); got != "serve, worker" {
		t.Errorf("DATABASE_URL required by %q", got)
	}
	if got := RequiredSentence(ModeMigrate); got != "" {
		t.Errorf("migrate requires %q", got)
	}
}
