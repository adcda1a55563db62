package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
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

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// ready runs every readiness check concurrently with a short deadline.
func (s *Server) ready(ctx context.Context) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		result = map[string]string{}
		ok     = true
	)
	for name, check := range s.d.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := "ok"
			if err := check(ctx); err != nil {
				status = "unavailable"
				s.log.WarnContext(ctx, "readiness check failed", "check", name, "err", err)
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
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
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
