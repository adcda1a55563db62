package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// bearer adds the Authorization header to every call.
func bearer(token string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	})
}

func wantConnectCode(t *testing.T, err error, code connect.Code) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return ce
}

// TestConnectClient drives payments through the generated Connect client,
// with the JSON and the binary codec: register and log in, create with an
// Idempotency-Key (and replay it), capture in part, and the refusals with
// their codes and field violations.
func TestConnectClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	codecs := map[string][]connect.ClientOption{
		"json":   {connect.WithProtoJSON()},
		"binary": nil,
	}
	for name, opts := range codecs {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			authc := paymentsv1connect.NewAuthServiceClient(e.hc, e.URL, opts...)
			login := func(role pb.Role) (string, string) {
				email := fmt.Sprintf("connect-%s-%d-%d@example.test", name, role, time.Now().UnixNano())
				reg, err := authc.Register(ctx, connect.NewRequest(&pb.RegisterRequest{Email: email, Password: password, Role: role, BusinessName: "Connect shop"}))
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				res, err := authc.Login(ctx, connect.NewRequest(&pb.LoginRequest{Email: email, Password: password}))
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				return reg.Msg.GetAccount().GetId(), res.Msg.GetAccessToken()
			}
			mID, mTok := login(pb.Role_ROLE_MERCHANT)
			cID, cTok := login(pb.Role_ROLE_CUSTOMER)
			_, otherTok := login(pb.Role_ROLE_MERCHANT)
			asMerchant := paymentsv1connect.NewPaymentServiceClient(e.hc, e.URL, append(opts, connect.WithInterceptors(bearer(mTok)))...)
			asCustomer := paymentsv1connect.NewPaymentServiceClient(e.hc, e.URL, append(opts, connect.WithInterceptors(bearer(cTok)))...)
			asOther := paymentsv1connect.NewPaymentServiceClient(e.hc, e.URL, append(opts, connect.WithInterceptors(bearer(otherTok)))...)

			create := func() *connect.Response[pb.CreatePaymentResponse] {
				req := connect.NewRequest(&pb.CreatePaymentRequest{
					MerchantId: mID, Amount: 7500, Currency: "usd", PaymentMethod: "pm_card_visa",
					CaptureMethod: pb.CaptureMethod_CAPTURE_METHOD_MANUAL, Metadata: map[string]string{"codec": name},
				})
				req.Header().Set("Idempotency-Key", "connect-"+name)
				res, err := asCustomer.CreatePayment(ctx, req)
				if err != nil {
					t.Fatalf("CreatePayment: %v", err)
				}
				return res
			}
			first := create()
			p := first.Msg.GetPayment()
			if first.Header().Get(replayedHeader) != "false" || p.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE ||
				p.GetCurrency() != "USD" || p.GetAmountCapturable() != 7500 || p.GetCustomerId() != cID {
				t.Fatalf("CreatePayment: %s=%q %v", replayedHeader, first.Header().Get(replayedHeader), p)
			}
			e.checkPaymentBasics(t, p)
			again := create()
			if again.Header().Get(replayedHeader) != "true" || !proto.Equal(again.Msg.GetPayment(), p) {
				t.Fatalf("replay: %s=%q %v", replayedHeader, again.Header().Get(replayedHeader), again.Msg.GetPayment())
			}

			// The merchant sees the customer's payment, and the gateway's
			// reference of it, which the customer's answer leaves out.
			got, err := asMerchant.GetPayment(ctx, connect.NewRequest(&pb.GetPaymentRequest{Id: p.GetId()}))
			if err != nil || !proto.Equal(customerView(got.Msg.GetPayment()), p) ||
				!strings.HasPrefix(got.Msg.GetPayment().GetGatewayReference(), sandbox.ReferencePrefix) || p.GetGatewayReference() != "" {
				t.Fatalf("GetPayment: %v %v (the customer's: %v)", err, got, p)
			}
			_, err = asOther.GetPayment(ctx, connect.NewRequest(&pb.GetPaymentRequest{Id: p.GetId()}))
			wantConnectCode(t, err, connect.CodeNotFound)

			_, err = asMerchant.CapturePayment(ctx, connect.NewRequest(&pb.CapturePaymentRequest{Id: p.GetId(), Amount: proto.Int64(7501)}))
			wantConnectCode(t, err, connect.CodeFailedPrecondition)
			_, err = asCustomer.CapturePayment(ctx, connect.NewRequest(&pb.CapturePaymentRequest{Id: p.GetId()}))
			wantConnectCode(t, err, connect.CodePermissionDenied)
			captured, err := asMerchant.CapturePayment(ctx, connect.NewRequest(&pb.CapturePaymentRequest{Id: p.GetId(), Amount: proto.Int64(5000)}))
			if err != nil {
				t.Fatalf("CapturePayment: %v", err)
			}
			if cp := captured.Msg.GetPayment(); cp.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED || cp.GetAmountReceived() != 5000 || cp.GetAmountCapturable() != 0 {
				t.Fatalf("after a partial capture: %v", cp)
			}
			_, err = asMerchant.CancelPayment(ctx, connect.NewRequest(&pb.CancelPaymentRequest{Id: p.GetId()}))
			wantConnectCode(t, err, connect.CodeFailedPrecondition)

			list, err := asCustomer.ListPayments(ctx, connect.NewRequest(&pb.ListPaymentsRequest{Status: pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED}))
			if err != nil || len(list.Msg.GetPayments()) != 1 || list.Msg.GetPayments()[0].GetId() != p.GetId() {
				t.Fatalf("ListPayments: %v %v", err, list)
			}

			// A refusal carries the field violation as an error detail.
			_, err = asCustomer.CreatePayment(ctx, connect.NewRequest(&pb.CreatePaymentRequest{MerchantId: mID, Amount: 100, Currency: "XXX", PaymentMethod: "pm_card_visa"}))
			ce := wantConnectCode(t, err, connect.CodeInvalidArgument)
			var fields []string
			for _, d := range ce.Details() {
				v, derr := d.Value()
				if derr != nil {
					t.Fatalf("error detail: %v", derr)
				}
				if vs, ok := v.(*validate.Violations); ok {
					for _, vi := range vs.GetViolations() {
						for _, el := range vi.GetField().GetElements() {
							fields = append(fields, el.GetFieldName())
						}
					}
				}
			}
			if !containsString(fields, "currency") {
				t.Fatalf("field violations %v, want currency", fields)
			}
			e.wantBalances(t, mID, cID, "USD", 5000)
		})
	}
}
