// Package deploy_test checks the deployment files against the program: no
// Docker engine, Kubernetes cluster or Render account runs here, so what can
// be known without one is checked by reading the files: every service,
// image tag, port, health check, start order and variable of
// docker-compose.yml; the Dockerfile's stages; every object of the
// Kubernetes base; the Render Blueprint; and the GitHub Actions workflow.
package deploy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/payments-platform/payments/internal/config"
)

// root is the repository's root (this package is deploy/).
const root = ".."

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: not valid YAML: %v", path, err)
	}
	return m
}

// readYAMLDocs reads every document of a multi-document YAML file.
func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: not valid YAML: %v", path, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
}

// get walks a parsed YAML tree by keys (string) and indexes (int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// strs is a YAML list of scalars as strings.
func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i] = str(x)
	}
	return out
}

// known are the variables paymentsd reads.
func known() map[string]config.Var {
	m := map[string]config.Var{}
	for _, v := range config.Vars {
		m[v.Name] = v
	}
	return m
}

// required are the variables mode refuses to start without.
func required(mode config.Mode) []string {
	var out []string
	for _, v := range config.Vars {
		if v.RequiredIn(mode) {
			out = append(out, v.Name)
		}
	}
	return out
}

// pinnedImage says what is wrong with an image reference, or "".
func pinnedImage(ref string) string {
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	switch {
	case name == "":
		return "no image"
	case tag == "":
		return "no tag (the registry's latest)"
	case tag == "latest" || tag == "stable" || tag == "main":
		return "a moving tag " + tag
	}
	return ""
}

var modeOfCommand = map[string]config.Mode{"serve": config.ModeServe, "worker": config.ModeWorker, "migrate": config.ModeMigrate}

// TestComposeFile reads docker-compose.yml as compose would (anchors and
// merges resolved) and checks the stack the README promises.
func TestComposeFile(t *testing.T) {
	c := readYAML(t, "docker-compose.yml")
	services, _ := c["services"].(map[string]any)
	want := []string{"api", "mailpit", "migrate", "mysql", "stripe-mock", "temporal", "temporal-ui", "worker"}
	var got []string
	for name := range services {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}

	// Images: pinned, paymentsd's built from deploy/Dockerfile.
	for name, s := range services {
		if problem := pinnedImage(str(get(s, "image"))); problem != "" {
			t.Errorf("%s: image %q: %s", name, str(get(s, "image")), problem)
		}
		if b := get(s, "build"); b != nil {
			if df := str(get(b, "dockerfile")); df != "deploy/Dockerfile" {
				t.Errorf("%s: built from %q, want deploy/Dockerfile", name, df)
			} else if _, err := os.Stat(filepath.Join(root, df)); err != nil {
				t.Error(err)
			}
		}
	}

	// Health checks on everything that keeps running; migrate runs once.
	for name, s := range services {
		hc := get(s, "healthcheck")
		if name == "migrate" {
			if get(hc, "disable") != true || str(get(s, "restart")) != "no" {
				t.Errorf("migrate: healthcheck %v, restart %v: want a one-shot (no health check, no restart)", hc, get(s, "restart"))
			}
			continue
		}
		test := strs(get(hc, "test"))
		if len(test) < 2 || (test[0] != "CMD" && test[0] != "CMD-SHELL") || get(hc, "disable") == true {
			t.Errorf("%s: health check %v, want a CMD test", name, hc)
		}
		if str(get(s, "restart")) != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, get(s, "restart"))
		}
	}

	// Start order: each waits for what it needs to be healthy (or done).
	wantDeps := map[string]map[string]string{
		"temporal":    {"mysql": "service_healthy"},
		"temporal-ui": {"temporal": "service_healthy"},
		"migrate":     {"mysql": "service_healthy"},
		"api":         {"migrate": "service_completed_successfully", "temporal": "service_healthy", "mailpit": "service_healthy"},
		"worker":      {"migrate": "service_completed_successfully", "temporal": "service_healthy", "mailpit": "service_healthy", "stripe-mock": "service_healthy"},
	}
	for name, s := range services {
		deps := map[string]string{}
		if m, ok := get(s, "depends_on").(map[string]any); ok {
			for d, v := range m {
				deps[d] = str(get(v, "condition"))
			}
		}
		if w := wantDeps[name]; fmt.Sprint(deps) != fmt.Sprint(w) && !(len(w) == 0 && len(deps) == 0) {
			t.Errorf("%s depends on %v, want %v", name, deps, w)
		}
	}

	// Ports a reader opens.
	wantPorts := map[string]string{"api": "8080:8080", "temporal-ui": "8233:8080", "mailpit": "8025:8025", "temporal": "7233:7233", "stripe-mock": "12111:12111"}
	for name, port := range wantPorts {
		if !slices.Contains(strs(get(services[name], "ports")), port) {
			t.Errorf("%s: ports %v, want %s", name, get(services[name], "ports"), port)
		}
	}
	if n := get(services["worker"], "deploy", "replicas"); n != 2 {
		t.Errorf("worker replicas %v, want 2", n)
	}

	// Temporal on this MySQL, with the platform's dynamic config.
	tenv := get(services["temporal"], "environment")
	if str(get(tenv, "DB")) != "mysql8" || str(get(tenv, "MYSQL_SEEDS")) != "mysql" || str(get(tenv, "VISIBILITY_DBNAME")) == "" {
		t.Errorf("temporal: environment %v, want MySQL 8 at mysql for persistence and visibility", tenv)
	}
	mounted := false
	for _, v := range strs(get(services["temporal"], "volumes")) {
		src, dst, _ := strings.Cut(v, ":")
		if src == "./deploy/temporal/dynamicconfig.yaml" && strings.HasSuffix(strings.TrimSuffix(dst, ":ro"), filepath.Base(str(get(tenv, "DYNAMIC_CONFIG_FILE_PATH")))) {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("temporal: deploy/temporal/dynamicconfig.yaml is not mounted where DYNAMIC_CONFIG_FILE_PATH points: %v", get(services["temporal"], "volumes"))
	}

	// paymentsd's containers: only variables it reads, every one its
	// command requires, probes on the admin address.
	vars := known()
	for _, name := range []string{"migrate", "api", "worker"} {
		s := services[name]
		cmd := strs(get(s, "command"))
		mode, ok := modeOfCommand[strings.Join(cmd, " ")]
		if !ok {
			t.Errorf("%s: command %v is not serve, worker or migrate", name, cmd)
			continue
		}
		env, _ := get(s, "environment").(map[string]any)
		for k := range env {
			if _, ok := vars[k]; !ok {
				t.Errorf("%s: %s is not a variable paymentsd reads", name, k)
			}
		}
		for _, k := range required(mode) {
			if str(env[k]) == "" {
				t.Errorf("%s (%s): %s is required and not set", name, mode, k)
			}
		}
		if !strings.HasPrefix(str(env["DATABASE_URL"]), "mysql://") || !strings.Contains(str(env["DATABASE_URL"]), "@tcp(mysql:3306)/") {
			t.Errorf("%s: DATABASE_URL %q, want the mysql service", name, env["DATABASE_URL"])
		}
		if mode == config.ModeMigrate {
			continue
		}
		probe := strs(get(s, "healthcheck", "test"))
		_, adminPort, _ := net.SplitHostPort(str(env["PAYMENTS_ADMIN_ADDR"]))
		if len(probe) != 4 || probe[1] != "/paymentsd" || probe[2] != "probe" || probe[3] != "http://127.0.0.1:"+adminPort+"/readyz" {
			t.Errorf("%s: health check %v, want /paymentsd probe of /readyz on the admin port %q", name, probe, adminPort)
		}
	}

	// Secrets come from .env: every ${VAR} the file uses is in the example
	// or has a default, and the example sets nothing the file does not use.
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	example := envFile(t, "deploy/compose.env.example")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_0-9]+)(:?[-?][^}]*)?\}`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
		if _, ok := example[m[1]]; !ok && !strings.HasPrefix(m[2], ":-") {
			t.Errorf("docker-compose.yml uses ${%s} without a default, and deploy/compose.env.example does not set it", m[1])
		}
	}
	for k := range example {
		if !used[k] {
			t.Errorf("deploy/compose.env.example sets %s, which docker-compose.yml does not use", k)
		}
	}
}

// envFile reads NAME=value lines, comments and blank lines skipped.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not NAME=value", path, line)
		}
		out[k] = v
	}
	return out
}

// TestDockerfile: multi-stage, a static build of the one binary at go.mod's
// Go version, a distroless (or scratch) runtime as a non-root user, and the
// probe as its health check.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	var user, entrypoint, healthcheck, build string
	args := map[string]string{}
	lines := strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n")
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(line, f[0]))
		switch strings.ToUpper(f[0]) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case "FROM":
			from = append(from, f[1])
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entrypoint = rest
		case "HEALTHCHECK":
			healthcheck = rest
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		}
	}
	if len(from) < 2 {
		t.Fatalf("FROM %v: want a build stage and a runtime stage", from)
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	if goVersion == nil || args["GO_VERSION"] != string(goVersion[1]) || !strings.HasPrefix(from[0], "golang:${GO_VERSION}") {
		t.Errorf("build stage %s with GO_VERSION %q, want golang at go.mod's %s", from[0], args["GO_VERSION"], goVersion[1])
	}
	runtime := from[len(from)-1]
	if !strings.HasPrefix(runtime, "gcr.io/distroless/static") && runtime != "scratch" {
		t.Errorf("runtime %s, want distroless static or scratch", runtime)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q, want a non-root user", user)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/paymentsd") {
		t.Errorf("build %q: want a static (CGO_ENABLED=0) build of ./cmd/paymentsd", build)
	}
	if entrypoint != `["/paymentsd"]` {
		t.Errorf("ENTRYPOINT %s, want the one binary, the role as its argument", entrypoint)
	}
	if !strings.Contains(healthcheck, `"/paymentsd", "probe"`) {
		t.Errorf("HEALTHCHECK %q, want paymentsd probe", healthcheck)
	}
}

// object is one Kubernetes object of the base.
type object map[string]any

func (o object) kind() string { return str(o["kind"]) }
func (o object) name() string { return str(get(map[string]any(o), "metadata", "name")) }

// TestKubernetesManifests parses every file of the Kustomize base and
// checks the API and worker Deployments (probes, resources, grace periods
// longer than their drains, secrets only by reference), their autoscalers
// and disruption budgets, the migration Job and the configuration.
func TestKubernetesManifests(t *testing.T) {
	k := readYAML(t, "deploy/k8s/kustomization.yaml")
	if str(k["kind"]) != "Kustomization" {
		t.Fatalf("deploy/k8s/kustomization.yaml is a %v", k["kind"])
	}
	objs := map[string]object{}
	for _, file := range strs(k["resources"]) {
		if strings.Contains(file, "secret") {
			t.Errorf("the base applies %s: secrets must not live in the repository", file)
		}
		for _, d := range readYAMLDocs(t, filepath.Join("deploy/k8s", file)) {
			o := object(d)
			if o.kind() == "" || o.name() == "" || str(o["apiVersion"]) == "" {
				t.Errorf("%s: an object without apiVersion, kind or name: %v", file, d)
			}
			objs[o.kind()+"/"+o.name()] = o
		}
	}
	for _, img := range k["images"].([]any) {
		if problem := pinnedImage(str(get(img, "newName")) + ":" + str(get(img, "newTag"))); problem != "" {
			t.Errorf("images: %v: %s", img, problem)
		}
	}

	vars := known()
	cm := objs["ConfigMap/paymentsd"]
	if cm == nil {
		t.Fatal("no ConfigMap paymentsd")
	}
	for key := range get(map[string]any(cm), "data").(map[string]any) {
		if _, ok := vars[key]; !ok {
			t.Errorf("ConfigMap paymentsd: %s is not a variable paymentsd reads", key)
		}
	}
	secretKeys := map[string]bool{}
	for _, d := range readYAMLDocs(t, "deploy/k8s/secret.example.yaml") {
		for key := range get(d, "stringData").(map[string]any) {
			secretKeys[key] = true
			if _, ok := vars[key]; !ok {
				t.Errorf("secret.example.yaml: %s is not a variable paymentsd reads", key)
			}
		}
	}
	for _, v := range []string{"DATABASE_URL", "JWT_SIGNING_KEY", "STRIPE_WEBHOOK_SECRET"} {
		if !secretKeys[v] {
			t.Errorf("secret.example.yaml lacks %s", v)
		}
	}

	// What each Deployment must drain within its grace period.
	workerStop := 30 * time.Second
	for _, c := range []struct {
		name, args string
		mode       config.Mode
		drain      time.Duration
	}{
		{"paymentsd-api", "serve", config.ModeServe, 20 * time.Second}, // cmd/paymentsd's drainTimeout
		{"paymentsd-worker", "worker", config.ModeWorker, workerStop},
	} {
		d := objs["Deployment/"+c.name]
		if d == nil {
			t.Errorf("no Deployment %s", c.name)
			continue
		}
		spec := get(map[string]any(d), "spec", "template", "spec")
		labels := get(map[string]any(d), "spec", "template", "metadata", "labels")
		if fmt.Sprint(get(map[string]any(d), "spec", "selector", "matchLabels")) != fmt.Sprint(labels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", c.name, get(map[string]any(d), "spec", "selector"), labels)
		}
		container := get(spec, "containers", 0)
		if str(get(container, "image")) != "paymentsd" || strings.Join(strs(get(container, "args")), " ") != c.args {
			t.Errorf("%s: image %v args %v, want paymentsd %s", c.name, get(container, "image"), get(container, "args"), c.args)
		}
		// Configuration by reference, secrets never inline.
		refs := map[string]bool{}
		for _, e := range get(container, "envFrom").([]any) {
			refs[str(get(e, "configMapRef", "name"))+"/cm"] = true
			refs[str(get(e, "secretRef", "name"))+"/secret"] = true
		}
		if !refs["paymentsd/cm"] || !refs["paymentsd/secret"] {
			t.Errorf("%s: envFrom %v, want the ConfigMap and the Secret paymentsd", c.name, get(container, "envFrom"))
		}
		env := map[string]string{}
		for _, e := range asList(get(container, "env")) {
			name := str(get(e, "name"))
			env[name] = str(get(e, "value"))
			if _, ok := vars[name]; !ok {
				t.Errorf("%s: %s is not a variable paymentsd reads", c.name, name)
			}
			if secretKeys[name] && get(e, "valueFrom") == nil {
				t.Errorf("%s: the secret %s is inline", c.name, name)
			}
		}
		for _, req := range required(c.mode) {
			if _, inSecret := secretKeys[req]; !inSecret && env[req] == "" && get(map[string]any(cm), "data", req) == nil {
				t.Errorf("%s: %s is required and comes from nowhere", c.name, req)
			}
		}
		// Probes on the admin port, which the container declares.
		ports := map[string]bool{}
		for _, p := range asList(get(container, "ports")) {
			ports[str(get(p, "name"))] = true
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
			h := get(container, probe, "httpGet")
			if str(get(h, "path")) != path || !ports[str(get(h, "port"))] || str(get(h, "port")) != "admin" {
				t.Errorf("%s: %s %v, want GET %s on the admin port", c.name, probe, h, path)
			}
		}
		if _, port, _ := net.SplitHostPort(str(get(map[string]any(cm), "data", "PAYMENTS_ADMIN_ADDR"))); port != "9090" {
			t.Errorf("ConfigMap PAYMENTS_ADMIN_ADDR port %q, want 9090 (the containers' admin port)", port)
		}
		for _, r := range []string{"cpu", "memory"} {
			if get(container, "resources", "requests", r) == nil {
				t.Errorf("%s: no %s request", c.name, r)
			}
		}
		if get(spec, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: not runAsNonRoot", c.name)
		}
		// The grace period outlasts the drain (and a preStop pause).
		drain := c.drain
		if v := env["PAYMENTS_WORKER_STOP_TIMEOUT"]; v != "" {
			if drain, err := time.ParseDuration(v); err != nil || drain != workerStop {
				t.Errorf("%s: PAYMENTS_WORKER_STOP_TIMEOUT %q: want %v, which this test assumes", c.name, v, workerStop)
			}
		}
		if s := get(container, "lifecycle", "preStop", "sleep", "seconds"); s != nil {
			n, _ := strconv.Atoi(str(s))
			drain += time.Duration(n) * time.Second
		}
		grace, _ := strconv.Atoi(str(get(spec, "terminationGracePeriodSeconds")))
		if time.Duration(grace)*time.Second < drain+10*time.Second {
			t.Errorf("%s: terminationGracePeriodSeconds %d, want at least %v (its drain and a margin)", c.name, grace, drain+10*time.Second)
		}
		// Scaled out and protected from voluntary disruption.
		hpa := objs["HorizontalPodAutoscaler/"+c.name]
		if str(get(map[string]any(hpa), "spec", "scaleTargetRef", "name")) != c.name || get(map[string]any(hpa), "spec", "minReplicas") == nil {
			t.Errorf("%s: HorizontalPodAutoscaler %v", c.name, hpa)
		}
		pdb := objs["PodDisruptionBudget/"+c.name]
		if fmt.Sprint(get(map[string]any(pdb), "spec", "selector", "matchLabels")) != fmt.Sprint(labels) || get(map[string]any(pdb), "spec", "minAvailable") == nil {
			t.Errorf("%s: PodDisruptionBudget %v does not cover the pods %v", c.name, pdb, labels)
		}
	}
	if svc := objs["Service/paymentsd-api"]; fmt.Sprint(get(map[string]any(svc), "spec", "selector")) != fmt.Sprint(get(map[string]any(objs["Deployment/paymentsd-api"]), "spec", "template", "metadata", "labels")) {
		t.Errorf("Service paymentsd-api does not select the API's pods: %v", svc)
	}
	if job := objs["Job/paymentsd-migrate"]; strings.Join(strs(get(map[string]any(job), "spec", "template", "spec", "containers", 0, "args")), " ") != "migrate" {
		t.Errorf("Job paymentsd-migrate: %v", job)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy/k8s/README.md")); err != nil {
		t.Error("deploy/k8s/README.md (Temporal's Helm chart or Temporal Cloud) is missing")
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// TestRenderBlueprint: the API as a web service and the worker as a
// background worker, from deploy/Dockerfile, with every variable serve and
// worker require (secrets asked for, not stored) and nothing else.
func TestRenderBlueprint(t *testing.T) {
	r := readYAML(t, "deploy/render.yaml")
	group := map[string]bool{}
	vars := known()
	for _, g := range asList(r["envVarGroups"]) {
		for _, e := range asList(get(g, "envVars")) {
			key := str(get(e, "key"))
			group[key] = true
			if _, ok := vars[key]; !ok {
				t.Errorf("envVarGroups: %s is not a variable paymentsd reads", key)
			}
			if (key == "JWT_SIGNING_KEY" || key == "STRIPE_WEBHOOK_SECRET" || key == "DATABASE_URL" || key == "TEMPORAL_API_KEY") && get(e, "sync") != false {
				t.Errorf("envVarGroups: the secret %s must be sync: false (asked for, not stored)", key)
			}
		}
	}
	roles := map[string]string{}
	for _, s := range asList(r["services"]) {
		if str(get(s, "runtime")) != "docker" {
			continue
		}
		if df := str(get(s, "dockerfilePath")); df != "./deploy/Dockerfile" {
			t.Errorf("%s: dockerfilePath %q", get(s, "name"), df)
		}
		roles[str(get(s, "type"))] = str(get(s, "dockerCommand"))
	}
	if roles["web"] != "/paymentsd serve" || roles["worker"] != "/paymentsd worker" {
		t.Errorf("services %v, want a web service running serve and a worker running worker", roles)
	}
	for _, mode := range []config.Mode{config.ModeServe, config.ModeWorker} {
		for _, req := range required(mode) {
			if !group[req] {
				t.Errorf("deploy/render.yaml: %s (required by %s) is not in the group", req, mode)
			}
		}
	}
}

// TestGitHubWorkflow: the workflow runs what .ci/run runs (make test with
// a MySQL database for the store tests), on go.mod's Go, and checks the
// generated code.
func TestGitHubWorkflow(t *testing.T) {
	w := readYAML(t, ".github/workflows/ci.yml")
	job := get(w, "jobs", "test")
	if job == nil {
		t.Fatal("no job test")
	}
	if problem := pinnedImage(str(get(job, "services", "mysql", "image"))); problem != "" {
		t.Errorf("the MySQL service image: %s", problem)
	}
	if !strings.HasPrefix(str(get(job, "env", "PAYMENTS_TEST_MYSQL_DSN")), "root@tcp(127.0.0.1:3306)/") {
		t.Errorf("PAYMENTS_TEST_MYSQL_DSN %q, want the service's database", get(job, "env", "PAYMENTS_TEST_MYSQL_DSN"))
	}
	var runs []string
	goFromMod := false
	for _, s := range asList(get(job, "steps")) {
		runs = append(runs, str(get(s, "run")))
		if strings.HasPrefix(str(get(s, "uses")), "actions/setup-go@") && str(get(s, "with", "go-version-file")) == "go.mod" {
			goFromMod = true
		}
	}
	if !goFromMod {
		t.Error("no actions/setup-go with go-version-file: go.mod")
	}
	ciRun, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(ciRun)), "make test") {
		t.Error(".ci/run no longer ends with make test: make the workflow run what it runs")
	}
	for _, want := range []string{"make test", "make check-generate"} {
		if !slices.Contains(runs, want) {
			t.Errorf("no step runs %q: %q", want, runs)
		}
	}
}
