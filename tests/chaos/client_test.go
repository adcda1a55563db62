package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// apiClient calls the API as integrators do: Connect over HTTP with JSON.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{Timeout: 45 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// callErr is a failed call: a Connect error (code and message) or a
// transport error (the process is down, the connection was cut).
type callErr struct {
	code, msg string
	transport error
}

func (e *callErr) Error() string {
	if e.transport != nil {
		return "transport: " + e.transport.Error()
	}
	return e.code + ": " + e.msg
}

// definitive reports whether the error is the API's answer to this
// request, which a retry would meet again: a refusal. Transport errors,
// unavailable, internal, unknown and deadline_exceeded say nothing about
// what happened; such a request is retried with its Idempotency-Key.
func (e *callErr) definitive() bool {
	if e == nil {
		return true
	}
	switch {
	case e.transport != nil:
		return false
	case e.code == "unavailable", e.code == "internal", e.code == "unknown", e.code == "deadline_exceeded",
		e.code == "resource_exhausted":
		return false
	case e.code == "aborted":
		// Another request with the same Idempotency-Key is in flight.
		return false
	case e.code == "failed_precondition" && strings.Contains(strings.ToLower(e.msg), "retry later"):
		// A capture or cancel still being confirmed with the gateway.
		return false
	}
	return true
}

// call posts req to the procedure and decodes the answer into resp.
func (c *apiClient) call(ctx context.Context, token, procedure string, req, resp proto.Message, idemKey string) *callErr {
	body, err := protojson.Marshal(req)
	if err != nil {
		return &callErr{transport: fmt.Errorf("encode: %w", err)}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+procedure, bytes.NewReader(body))
	if err != nil {
		return &callErr{transport: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	if idemKey != "" {
		hr.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return &callErr{transport: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return &callErr{transport: fmt.Errorf("read answer: %w", err)}
	}
	if res.StatusCode != http.StatusOK {
		var ce struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &ce) != nil || ce.Code == "" {
			// Not the API's answer (a proxy's, a half-started process's).
			return &callErr{transport: fmt.Errorf("HTTP %d: %.200s", res.StatusCode, data)}
		}
		return &callErr{code: ce.Code, msg: ce.Message}
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, resp); err != nil {
		return &callErr{transport: fmt.Errorf("decode answer: %w: %.200s", err, data)}
	}
	return nil
}

// retryWindow bounds how long one request is retried through faults:
// longer than any outage the suite makes.
const retryWindow = 4 * time.Minute

// until calls the procedure until its answer is definitive (an answer or a
// refusal), with the same Idempotency-Key every time when key is not
// empty; it counts the attempts that were not. An answer that never comes
// within retryWindow is returned as it is (not definitive): the caller
// reports it as a lost request.
func (c *apiClient) until(ctx context.Context, tokenOf func() string, procedure string, req, resp proto.Message, key string, retries *int) *callErr {
	deadline := time.Now().Add(retryWindow)
	pause := 50 * time.Millisecond
	for {
		err := c.call(ctx, tokenOf(), procedure, req, resp, key)
		if err.definitive() || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		if retries != nil {
			*retries++
		}
		time.Sleep(pause) // a client's backoff between retries
		if pause < time.Second {
			pause *= 2
		}
	}
}
