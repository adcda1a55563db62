// Command openapi-gen completes the OpenAPI document that protoc-gen-openapi
// writes from the protos with what the protos do not say: the bearer
// security scheme and the routes that need none, the Idempotency-Key header
// of the routes that honour it, who may call each route, the Connect JSON
// error body and examples. `make generate` runs it on
// api/openapi/openapi.yaml right after buf generate, in place:
//
//	go run ./cmd/openapi-gen api/openapi/openapi.yaml
//
// Its input must be protoc-gen-openapi's output; its output is deterministic.
package main

import (
	"fmt"
	"os"

	"github.com/payments-platform/payments/api"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapi-gen <openapi.yaml written by protoc-gen-openapi>")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-gen:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := complete(in, api.Access())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}
