package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// servedServices are the names the gRPC health protocol knows.
var servedServices = map[string]bool{
	paymentsv1connect.AuthServiceName:        true,
	paymentsv1connect.AccountServiceName:     true,
	paymentsv1connect.PaymentServiceName:     true,
	paymentsv1connect.RefundServiceName:      true,
	paymentsv1connect.DisputeServiceName:     true,
	paymentsv1connect.TransactionServiceName: true,
	paymentsv1connect.WebhookServiceName:     true,
	paymentsv1connect.AdminServiceName:       true,
}

// healthz answers /healthz: the process is alive.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// ready runs every readiness check concurrently with a short deadline.
func (s *Server) ready(ctx context.Context) (map[string]string, bool) {
	return runChecks(ctx, s.d.Checks, s.log)
}

// runChecks runs checks concurrently with a short deadline: each one's
// status ("ok" or "unavailable") and whether all are ok.
func runChecks(ctx context.Context, checks map[string]func(context.Context) error, log *slog.Logger) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		result = map[string]string{}
		ok     = true
	)
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := "ok"
			if err := check(ctx); err != nil {
				status = "unavailable"
				log.WarnContext(ctx, "readiness check failed", "check", name, "err", err)
			}
			mu.Lock()
			defer mu.Unlock()
			result[name] = status
			if status != "ok" {
				ok = false
			}
		}()
	}
	wg.Wait()
	return result, ok
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks, ok := s.ready(r.Context())
	writeReadiness(w, checks, ok)
}

// writeReadiness answers /readyz: 200 {"status":"ok","checks":{...}}, or
// 503 with "unavailable" and which check failed.
func writeReadiness(w http.ResponseWriter, checks map[string]string, ok bool) {
	body := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{Status: "ok", Checks: checks}
	code := http.StatusOK
	if !ok {
		body.Status = "unavailable"
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// AdminHandler serves the admin address (PAYMENTS_ADMIN_ADDR) of serve and
// worker, for orchestrators and operators rather than clients: GET
// /healthz (the process is alive) and GET /readyz (checks, as the API's
// /readyz). A worker has no API port, so these are its probes.
func AdminHandler(checks map[string]func(context.Context) error, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		result, ok := runChecks(r.Context(), checks, log)
		writeReadiness(w, result, ok)
	})
	return mux
}

// healthChecker answers the gRPC health protocol from the readiness checks.
type healthChecker struct{ s *Server }

func (h *healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && !servedServices[req.Service] {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if _, ok := h.s.ready(ctx); ok {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
