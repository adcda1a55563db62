package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the test's own connections to its MariaDB

	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/platform"
	"github.com/payments-platform/payments/internal/store"
)

// The chaos suite runs the platform as production does, in processes of
// its own that it can kill: a MariaDB server of its own (so that it can
// restart it without disturbing anything else on the machine), a Temporal
// dev server, `paymentsd serve` (the API) and `paymentsd worker`, built from
// this checkout. Nothing of it is in-process but the Temporal dev server,
// which the suite never kills (Temporal's own durability is Temporal's).

// cluster is one running platform.
type cluster struct {
	t   testing.TB
	dir string
	bin string

	db       *mariaDB
	temporal *devserver.Server

	vars   map[string]string // the environment of serve and worker
	api    *proc
	worker *proc
	apiURL string

	// st is the suite's own connection to the platform's database, for
	// the invariants; sbx reads the sandbox's state (the gateway's view)
	// and redelivers its events.
	st  *store.Store
	sbx *sandbox.Sandbox
}

// buildPaymentsd builds cmd/paymentsd into dir once per test binary.
var built struct {
	once sync.Once
	path string
	err  error
}

func paymentsdBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "chaos-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "paymentsd")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/paymentsd")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/paymentsd: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("chaos: %v", built.err)
	}
	return built.path
}

// repoRoot is the module's root, two levels above this package.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// clusterOptions shape a cluster.
type clusterOptions struct {
	// SandboxFaults is PAYMENTS_SANDBOX_FAULTS of the worker.
	SandboxFaults string
}

// startCluster brings a platform up and registers its shutdown.
func startCluster(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), bin: paymentsdBinary(t)}
	c.db = startMariaDB(t, filepath.Join(c.dir, "mariadb"))
	if err := c.db.exec("CREATE DATABASE payments CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("chaos: create the database: %v", err)
	}
	dbURL := "mysql://" + c.db.dsn("payments")

	bin, err := devserver.Find()
	if err != nil {
		t.Fatalf("chaos: the suite needs the Temporal CLI: %v", err)
	}
	tlog, err := os.Create(filepath.Join(c.dir, "temporal.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlog.Close() })
	c.temporal, err = devserver.Start(context.Background(), devserver.Options{
		Binary: bin, Address: "127.0.0.1:0", SearchAttributes: platform.SearchAttributeTypes(),
		DynamicConfig: devserver.SingleWorkerConfig, Log: tlog,
	})
	if err != nil {
		t.Fatalf("chaos: start the Temporal dev server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.temporal.Stop(ctx)
	})

	httpAddr := freeAddr(t)
	c.apiURL = "http://" + httpAddr
	secret := "whsec_" + randomText(t, 24)
	c.vars = map[string]string{
		"DATABASE_URL":           dbURL,
		"TEMPORAL_ADDRESS":       c.temporal.Address(),
		"JWT_SIGNING_KEY":        base64.StdEncoding.EncodeToString(randomBytes(t, 32)),
		"STRIPE_WEBHOOK_SECRET":  secret,
		"PAYMENTS_GATEWAY":       "sandbox",
		"PAYMENTS_ALLOW_SANDBOX": "true",
		"PAYMENTS_PUBLIC_URL":    c.apiURL,
		"PAYMENTS_HTTP_ADDR":     httpAddr,
		"PAYMENTS_DATA_DIR":      c.dir,
		// The suite's webhook receiver listens on 127.0.0.1.
		"PAYMENTS_WEBHOOK_ALLOW_INSECURE": "true",
		// Info (faults log at warning level): the injected faults are
		// counted from the worker's log, and the rest explains a failure.
		"PAYMENTS_LOG_LEVEL": "info",
	}
	if r := c.run(nil, "migrate"); r != nil {
		t.Fatalf("chaos: paymentsd migrate: %v", r)
	}

	c.api = c.newProc("api", "serve", nil)
	workerVars := map[string]string{"PAYMENTS_SANDBOX_FAULTS": o.SandboxFaults}
	c.worker = c.newProc("worker", "worker", workerVars)
	if err := errors.Join(c.startAPI(), c.worker.startReady()); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	t.Cleanup(func() {
		c.api.stop()
		c.worker.stop()
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.st, err = store.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("chaos: open the store: %v", err)
	}
	t.Cleanup(func() { _ = c.st.Close() })
	c.sbx, err = sandbox.New(sandbox.Options{State: c.st, PublicURL: c.apiURL, WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run runs `paymentsd args...` to its end; stdin, if not nil, is its input.
func (c *cluster) run(stdin io.Reader, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.environ(nil)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, out.String())
	}
	return nil
}

func (c *cluster) environ(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range c.vars {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// startAPI starts the API process and waits until it answers /healthz.
// Like every start and restart here it returns its failure rather than
// failing the test: the faults run on goroutines of their own.
func (c *cluster) startAPI() error { return c.api.startReady() }

// killAPI kills the API with SIGKILL and starts it again.
func (c *cluster) killAPI() error {
	c.api.kill()
	return c.api.startReady()
}

// killWorker kills the worker with SIGKILL and starts it again, and waits
// until it is up (its admin address answers): the next fault may take the
// database away, and a worker that cannot reach it at start exits.
func (c *cluster) killWorker() error {
	c.worker.kill()
	return c.worker.startReady()
}

// proc is one paymentsd process that the suite starts, kills and starts
// again, with its output appended to one log file across its lives.
type proc struct {
	bin     string
	name    string
	args    []string
	env     []string
	logPath string

	// health answers 200 once the process is up: its admin address's
	// /healthz, which it serves once its database and Temporal answered.
	health string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	lives int
	// startRetries counts the starts that exited before the process was
	// up (the database or Temporal unreachable at that moment).
	startRetries int
}

func (c *cluster) newProc(name string, role string, extra map[string]string) *proc {
	// Each process gets an admin address of its own.
	admin := freeAddr(c.t)
	extra2 := map[string]string{"PAYMENTS_ADMIN_ADDR": admin}
	for k, v := range extra {
		extra2[k] = v
	}
	return &proc{bin: c.bin, name: name, args: []string{role}, env: c.environ(extra2),
		logPath: filepath.Join(c.dir, name+".log"), health: "http://" + admin + "/healthz"}
}

// startReady starts the process and waits until it is up. A process that
// exits while it starts (paymentsd refuses to start without its database
// or Temporal) is started again a second later, as an orchestrator
// restarts a crashed container, for up to two minutes.
func (p *proc) startReady() error {
	deadline := time.Now().Add(2 * time.Minute)
	client := &http.Client{Timeout: 2 * time.Second}
	if err := p.start(); err != nil {
		return err
	}
	for {
		res, err := client.Get(p.health)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not up within 2 minutes (%v); see %s", p.name, err, p.logPath)
		}
		if p.exited() {
			p.mu.Lock()
			p.startRetries++
			p.mu.Unlock()
			time.Sleep(time.Second) // an orchestrator's restart back-off
			if err := p.start(); err != nil {
				return err
			}
			continue
		}
		time.Sleep(50 * time.Millisecond) // polling the process's readiness
	}
}

// retries is startRetries.
func (p *proc) retries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startRetries
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	done, err := spawn(cmd, p.logPath, fmt.Sprintf("==== chaos: start %s (life %d)\n", p.name, p.lives+1))
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done = cmd, done
	p.lives++
	return nil
}

func (p *proc) exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends the process gracefully (SIGTERM), or kills it after 30 s.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// count returns how many lines of the process's log contain every one of
// the needles.
func (p *proc) count(needles ...string) int {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, s := range needles {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

// spawn starts cmd with its output appended to logPath, after a first
// line, and returns a channel closed when it has exited.
func spawn(cmd *exec.Cmd, logPath, first string) (chan struct{}, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	_, _ = f.WriteString(first)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	return done, nil
}

// mariaDB is a MariaDB server of the suite's own, on a data directory and
// port of its own, which it restarts at will.
type mariaDB struct {
	dir     string
	port    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startMariaDB initialises a data directory and starts the server. A
// machine without MariaDB's server fails the test, saying what is missing.
func startMariaDB(t testing.TB, dir string) *mariaDB {
	t.Helper()
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + bin); err2 != nil {
				t.Fatalf("chaos: the suite restarts a MariaDB server of its own and needs %s (Debian: apt-get install mariadb-server): %v", bin, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &mariaDB{dir: dir, logPath: filepath.Join(dir, "server.log")}
	install := exec.Command(lookSbin("mariadb-install-db"), "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
		"--user=root", "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("chaos: mariadb-install-db: %v\n%s", err, out)
	}
	m.port = strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	if err := m.start(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	t.Cleanup(func() { m.stop(syscall.SIGTERM) })
	return m
}

func lookSbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// dsn is the go-sql-driver DSN of database name on this server.
func (m *mariaDB) dsn(name string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%s)/%s?parseTime=true&multiStatements=false", m.port, name)
}

func (m *mariaDB) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(lookSbin("mariadbd"), "--no-defaults", "--datadir="+filepath.Join(m.dir, "data"),
		"--port="+m.port, "--socket="+filepath.Join(m.dir, "mysqld.sock"), "--bind-address=127.0.0.1",
		"--user=root", "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=128M",
		"--max-connections=500", "--pid-file="+filepath.Join(m.dir, "mysqld.pid"))
	done, err := spawn(cmd, m.logPath, "")
	if err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	m.cmd, m.done = cmd, done
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := m.ping()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mariadbd exited at start; see %s", m.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd did not answer within 90 s: %v; see %s", err, m.logPath)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's readiness
	}
}

func (m *mariaDB) ping() error {
	db, err := sql.Open("mysql", m.dsn("")+"&timeout=2s")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func (m *mariaDB) exec(query string) error {
	db, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(query)
	return err
}

// stop stops the server with sig (SIGTERM: a clean shutdown; SIGKILL: a
// crash, which InnoDB recovers from at the next start).
func (m *mariaDB) stop(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// restart stops the server with sig and starts it again after down.
func (m *mariaDB) restart(sig syscall.Signal, down time.Duration) error {
	m.stop(sig)
	if down > 0 {
		time.Sleep(down) // the outage itself
	}
	return m.start()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomText(t testing.TB, n int) string { return hex.EncodeToString(randomBytes(t, n)) }
