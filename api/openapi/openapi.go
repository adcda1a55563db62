// Package openapi holds the OpenAPI 3 document of the REST routes, generated
// from the protos by `make generate` (protoc-gen-openapi, then
// cmd/openapi-gen) and embedded so that the API serves the committed file
// byte for byte at GET /openapi.yaml.
package openapi

import _ "embed"

// YAML is openapi.yaml.
//
//go:embed openapi.yaml
var YAML []byte
