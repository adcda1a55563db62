package api

import (
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/payments-platform/payments/api/openapi"
)

// routeAPI registers the API's routes on mux: each service at its
// procedures' paths (Connect, gRPC, gRPC-Web) and at its REST routes
// (/v1/...), gRPC server reflection, the OpenAPI document and its docs
// page, and a Connect JSON 404 for every path no other route of mux serves.
func (s *Server) routeAPI(mux *http.ServeMux, services []rpcService) {
	names := []string{grpchealth.HealthV1ServiceName}
	for _, svc := range services {
		mux.Handle(svc.path, apiErrors(svc.handler))
		names = append(names, strings.Trim(svc.path, "/"))
	}
	mux.Handle("/v1/", apiErrors(s.restHandler(services)))

	// Reflection lets grpcurl and buf curl list and call every service
	// without the proto files; the schema is public, as /openapi.yaml is.
	if files, err := schemaFiles(names); err != nil {
		s.log.Error("gRPC server reflection is not served", "err", err)
	} else {
		reflector := grpcreflect.NewReflector(grpcreflect.NamerFunc(func() []string { return names }),
			grpcreflect.WithDescriptorResolver(files))
		for _, route := range []func(*grpcreflect.Reflector, ...connect.HandlerOption) (string, http.Handler){
			grpcreflect.NewHandlerV1, grpcreflect.NewHandlerV1Alpha,
		} {
			path, h := route(reflector, connect.WithReadMaxBytes(MaxRequestBytes))
			mux.Handle(path, apiErrors(h))
		}
	}

	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapi.YAML)
	})
	// Swagger UI v5, its assets embedded in the swgui module: the page loads
	// nothing from outside this server, and "Try it out" calls this server
	// (the document names no other).
	docs := v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "Payments API",
		SwaggerJSON: "/openapi.yaml",
		BasePath:    "/docs/",
		SettingsUI: map[string]string{
			"tryItOutEnabled":        "true",
			"displayRequestDuration": "true",
		},
	})
	mux.Handle("GET /docs", docs)
	mux.Handle("GET /docs/", docs)

	mux.HandleFunc("/", noRoute)
}

// schemaFiles are the files that declare the services named and all they
// import: what reflection shows. The global registry would also show every
// other type compiled into the binary (Temporal's, for one).
func schemaFiles(services []string) (*protoregistry.Files, error) {
	files := new(protoregistry.Files)
	var add func(protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := files.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		for i := range fd.Imports().Len() {
			if err := add(fd.Imports().Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return files.RegisterFile(fd)
	}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		if err := add(d.ParentFile()); err != nil {
			return nil, err
		}
	}
	return files, nil
}
