package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/api/openapi"
)

// TestOpenAPIDocument: GET /openapi.yaml serves the committed document byte
// for byte; it is valid OpenAPI 3 with every $ref resolved and every example
// valid; every RPC has its REST route there, with the bearer security
// unless it is open, the Idempotency-Key header when it honours one, its
// request and response schemas or its query parameters, and Connect's error
// body; and every message of the package is a schema or, for a route
// without a body, its parameters.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+"/openapi.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.h1.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	committed, err := os.ReadFile("openapi/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, committed) || !bytes.Equal(served, openapi.YAML) {
		t.Fatal("GET /openapi.yaml does not serve api/openapi/openapi.yaml as committed")
	}

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(served)
	if err != nil {
		t.Fatalf("load (every $ref must resolve): %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("not valid OpenAPI 3: %v", err)
	}
	if scheme := doc.Components.SecuritySchemes["bearer"]; scheme == nil || scheme.Value.Type != "http" || scheme.Value.Scheme != "bearer" {
		t.Errorf("components.securitySchemes.bearer = %+v, want HTTP bearer", scheme)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("security = %v, want bearer for every route", doc.Security)
	}

	access := map[string]api.ProcedureAccess{}
	for _, a := range api.Access() {
		access[a.Procedure] = a
	}
	schemaName := func(ref *openapi3.SchemaRef) string { return strings.TrimPrefix(ref.Ref, "#/components/schemas/") }
	withoutBody := map[protoreflect.FullName]bool{}
	for _, md := range methods {
		method, template, hasBody := httpRule(t, md)
		path := template
		for i := range md.Input().Fields().Len() {
			fd := md.Input().Fields().Get(i)
			path = strings.ReplaceAll(path, "{"+string(fd.Name())+"}", "{"+fd.JSONName()+"}")
		}
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s: no %s %s in the document", md.FullName(), method, path)
			continue
		}
		op := item.GetOperation(method)
		proc := procedureOf(md)
		// The proto comments are the reference (buf lint's COMMENTS rules
		// keep every element commented): each RPC ends with its errors.
		if !strings.Contains(op.Description, "\n\nErrors: ") {
			t.Errorf("%s %s: the description has no \"Errors:\" paragraph (the RPC's comment in the proto must end with one)", method, path)
		}
		a := access[proc]
		if want := string(md.Parent().Name()) + "_" + string(md.Name()); op.OperationID != want {
			t.Errorf("%s %s: operationId %q, want %q", method, path, op.OperationID, want)
		}
		switch {
		case a.Open && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s is open, but %s %s asks for credentials", proc, method, path)
		case !a.Open && op.Security != nil:
			t.Errorf("%s needs credentials, but %s %s has its own security %v", proc, method, path, *op.Security)
		}
		hasKey := false
		for _, p := range op.Parameters {
			hasKey = hasKey || p.Value.In == "header" && p.Value.Name == "Idempotency-Key"
		}
		if hasKey != a.Idempotent {
			t.Errorf("%s %s: Idempotency-Key parameter %v, want %v", method, path, hasKey, a.Idempotent)
		}
		if got := schemaName(op.Responses.Status(http.StatusOK).Value.Content.Get("application/json").Schema); got != string(md.Output().Name()) {
			t.Errorf("%s %s answers %s, want %s", method, path, got, md.Output().Name())
		}
		if got := schemaName(op.Responses.Default().Value.Content.Get("application/json").Schema); got != "Error" {
			t.Errorf("%s %s: errors are %s, want Connect's Error", method, path, got)
		}
		if hasBody {
			if got := schemaName(op.RequestBody.Value.Content.Get("application/json").Schema); got != string(md.Input().Name()) {
				t.Errorf("%s %s takes %s, want %s", method, path, got, md.Input().Name())
			}
			continue
		}
		withoutBody[md.Input().FullName()] = true
		for i := range md.Input().Fields().Len() {
			fd := md.Input().Fields().Get(i)
			if op.Parameters.GetByInAndName("path", fd.JSONName()) == nil && op.Parameters.GetByInAndName("query", fd.JSONName()) == nil {
				t.Errorf("%s %s: %s is neither a path nor a query parameter", method, path, fd.FullName())
			}
		}
	}

	protoregistry.GlobalFiles.RangeFilesByPackage("payments.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Messages().Len() {
			m := fd.Messages().Get(i)
			if doc.Components.Schemas[string(m.Name())] == nil && !withoutBody[m.FullName()] {
				t.Errorf("message %s has no schema", m.FullName())
			}
		}
		return true
	})
	for name, schema := range doc.Components.Schemas {
		if schema.Value.Description == "" {
			t.Errorf("schema %s has no description", name)
		}
		for prop, ps := range schema.Value.Properties {
			if ps.Value.Description == "" && ps.Ref == "" {
				t.Errorf("%s.%s has no description", name, prop)
			}
		}
	}

	// Swagger UI starts "Try it out" from these: they must be requests the
	// API takes, unknown fields refused.
	examples := 0
	for name, schema := range doc.Components.Schemas {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("payments.v1." + name))
		if schema.Value.Example == nil || err != nil {
			continue
		}
		examples++
		raw, err := json.Marshal(schema.Value.Example)
		if err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal(raw, mt.New().Interface()); err != nil {
			t.Errorf("the example of %s is not one: %v\n%s", name, err, raw)
		}
	}
	if examples < 5 {
		t.Errorf("%d request examples, want those of the walkthrough (Register, Login, CreatePayment, ...)", examples)
	}
}
