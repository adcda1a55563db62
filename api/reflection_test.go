package api_test

import (
	"slices"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// servedServices are the services of package payments.v1 and the health
// service: what reflection must list.
func servedServices() []string {
	names := []string{grpchealth.HealthV1ServiceName}
	protoregistry.GlobalFiles.RangeFilesByPackage("payments.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			names = append(names, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	slices.Sort(names)
	return names
}

// TestReflectionListsEveryService: grpcurl and buf curl find every service
// through gRPC server reflection (v1, as grpcreflect's client asks), and get
// the file that declares one with all it imports, so they can call it
// without the proto files.
func TestReflectionListsEveryService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stream := grpcreflect.NewClient(e.h2c, e.url).NewStream(ctxT(t))
	defer stream.Close()

	listed, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range listed {
		got = append(got, string(n))
	}
	slices.Sort(got)
	if want := servedServices(); !slices.Equal(got, want) {
		t.Errorf("reflection lists %q, want %q", got, want)
	}

	fds, err := stream.FileContainingSymbol("payments.v1.PaymentService")
	if err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: fds})
	if err != nil {
		t.Fatalf("the files answered do not build: %v", err)
	}
	d, err := files.FindDescriptorByName("payments.v1.PaymentService.CreatePayment")
	if err != nil {
		t.Fatal(err)
	}
	if in := d.(protoreflect.MethodDescriptor).Input(); in.Fields().ByName("amount") == nil {
		t.Errorf("CreatePayment's input %s has no amount field", in.FullName())
	}

	// Only what the services need is shown, not every type of the binary.
	if _, err := stream.FileContainingSymbol("temporal.api.workflowservice.v1.WorkflowService"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("reflection of a Temporal service: %v, want not_found", err)
	}
}

// TestReflectionV1Alpha: older tools ask the v1alpha service, which answers
// the same.
func TestReflectionV1Alpha(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := connect.NewClient[grpc_reflection_v1alpha.ServerReflectionRequest, grpc_reflection_v1alpha.ServerReflectionResponse](
		e.h2c, e.url+"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", connect.WithGRPC())
	stream := client.CallBidiStream(ctxT(t))
	if err := stream.Send(&grpc_reflection_v1alpha.ServerReflectionRequest{
		MessageRequest: &grpc_reflection_v1alpha.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Receive()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseRequest()
	_ = stream.CloseResponse()
	var got []string
	for _, s := range res.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	slices.Sort(got)
	if want := servedServices(); !slices.Equal(got, want) {
		t.Errorf("v1alpha reflection lists %q, want %q", got, want)
	}
}
