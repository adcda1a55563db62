package api

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// strictJSONCodec is Connect's JSON codec with one difference: unknown fields
// are an error (`invalid_argument`) instead of being dropped, so a typo in a
// field name never silently changes what a payment request means. Responses
// carry every field, zero values included, as integrators expect.
type strictJSONCodec struct{ name string }

var (
	jsonMarshal   = protojson.MarshalOptions{EmitDefaultValues: true}
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: false}
)

func (c strictJSONCodec) Name() string { return c.name }

func (c strictJSONCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", v)
	}
	return jsonMarshal.Marshal(m)
}

// MarshalStable is used for Connect GET requests; protojson output is stable
// enough for a single binary.
func (c strictJSONCodec) MarshalStable(v any) ([]byte, error) { return c.Marshal(v) }

// IsBinary reports that this codec is text.
func (c strictJSONCodec) IsBinary() bool { return false }

func (c strictJSONCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", v)
	}
	if len(data) == 0 {
		// An empty body is an empty request, as curl users expect.
		proto.Reset(m)
		return nil
	}
	return jsonUnmarshal.Unmarshal(data, m)
}
