package money_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
)

func mustLookup(t testing.TB, code string) money.Currency {
	t.Helper()
	c, ok := money.Lookup(code)
	if !ok {
		t.Fatalf("Lookup(%q) = false", code)
	}
	return c
}

// wantInvalid checks that err is an invalid-argument domain error for field.
func wantInvalid(t *testing.T, err error, field string) *errs.Error {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want invalid argument")
	}
	if !errors.Is(err, errs.ErrInvalidArgument) || errs.KindOf(err) != errs.KindInvalidArgument {
		t.Fatalf("err = %v (kind %v), want invalid argument", err, errs.KindOf(err))
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T, want *errs.Error", err)
	}
	if e.Field != field {
		t.Fatalf("err field = %q, want %q", e.Field, field)
	}
	return e
}

func TestLookupKnown(t *testing.T) {
	tests := []struct {
		code     string
		numeric  int
		exponent int
		name     string
	}{
		{"JPY", 392, 0, "Yen"},
		{"KRW", 410, 0, "Won"},
		{"VND", 704, 0, "Dong"},
		{"CLP", 152, 0, "Chilean Peso"},
		{"ISK", 352, 0, "Iceland Krona"},
		{"PYG", 600, 0, "Guarani"},
		{"UGX", 800, 0, "Uganda Shilling"},
		{"XAF", 950, 0, "CFA Franc BEAC"},
		{"XOF", 952, 0, "CFA Franc BCEAO"},
		{"XPF", 953, 0, "CFP Franc"},
		{"UYI", 940, 0, "Uruguay Peso en Unidades Indexadas (UI)"},
		{"USD", 840, 2, "US Dollar"},
		{"EUR", 978, 2, "Euro"},
		{"GBP", 826, 2, "Pound Sterling"},
		{"KES", 404, 2, "Kenyan Shilling"},
		{"NGN", 566, 2, "Naira"},
		{"ALL", 8, 2, "Lek"},
		{"KWD", 414, 3, "Kuwaiti Dinar"},
		{"BHD", 48, 3, "Bahraini Dinar"},
		{"OMR", 512, 3, "Rial Omani"},
		{"JOD", 400, 3, "Jordanian Dinar"},
		{"IQD", 368, 3, "Iraqi Dinar"},
		{"LYD", 434, 3, "Libyan Dinar"},
		{"TND", 788, 3, "Tunisian Dinar"},
		{"CLF", 990, 4, "Unidad de Fomento"},
		{"UYW", 927, 4, "Unidad Previsional"},
		// Recent additions to List One.
		{"SLE", 925, 2, "Leone"},
		{"VES", 928, 2, "Bolívar Soberano"},
		{"VED", 926, 2, "Bolívar Soberano"},
		{"ZWG", 924, 2, "Zimbabwe Gold"},
		{"XCG", 532, 2, "Caribbean Guilder"},
		{"XAD", 396, 2, "Arab Accounting Dinar"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			want := money.Currency{Code: tt.code, Numeric: tt.numeric, Exponent: tt.exponent, Name: tt.name}
			if got := mustLookup(t, tt.code); got != want {
				t.Errorf("Lookup(%q) = %+v, want %+v", tt.code, got, want)
			}
			got, err := money.Normalize("currency", tt.code)
			if err != nil || got != want {
				t.Errorf("Normalize(%q) = %+v, %v; want %+v", tt.code, got, err, want)
			}
		})
	}
}

// TestExponentsWholeTable pins every exponent: the listed codes have 0, 3 or
// 4 decimals and every other code has 2.
func TestExponentsWholeTable(t *testing.T) {
	special := map[string]int{}
	for _, c := range strings.Fields("JPY KRW VND CLP ISK PYG UGX XAF XOF XPF KMF GNF RWF DJF VUV BIF UYI") {
		special[c] = 0
	}
	for _, c := range strings.Fields("KWD BHD OMR JOD IQD LYD TND") {
		special[c] = 3
	}
	for _, c := range strings.Fields("CLF UYW") {
		special[c] = 4
	}
	for code := range special {
		mustLookup(t, code)
	}
	for _, c := range money.All() {
		want, ok := special[c.Code]
		if !ok {
			want = 2
		}
		if c.Exponent != want {
			t.Errorf("%s exponent = %d, want %d", c.Code, c.Exponent, want)
		}
	}
}

func TestRejected(t *testing.T) {
	for _, code := range []string{
		// Not currencies, or no minor unit.
		"XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA",
		"xxx", "xau",
		// Withdrawn.
		"HRK", "SLL", "ANG", "ZWL", "CUC", "BGN", "VEF", "MRO", "STD", "LTL", "DEM",
		// Malformed.
		"usd1", "", "US", "U", "USDD", "U$D", "US ", " USD", "USD ", "U-D", "123", "ÜSD", "US\x00", "usd\n",
		// Well formed but unassigned.
		"ABC", "QQQ", "ZZZ", "AAA",
	} {
		t.Run(code, func(t *testing.T) {
			if c, ok := money.Lookup(code); ok {
				t.Fatalf("Lookup(%q) = %+v, true; want false", code, c)
			}
			c, err := money.Normalize("payment.currency", code)
			if c != (money.Currency{}) {
				t.Errorf("Normalize(%q) currency = %+v, want zero", code, c)
			}
			e := wantInvalid(t, err, "payment.currency")
			want := `unknown currency "` + code + `": want an ISO 4217 code such as USD`
			if code == "US\x00" || code == "usd\n" {
				want = "" // %q escapes these; checked below by prefix
			}
			if want != "" && e.Message != want {
				t.Errorf("message = %q, want %q", e.Message, want)
			}
			if !strings.HasPrefix(e.Message, "unknown currency ") {
				t.Errorf("message = %q", e.Message)
			}
		})
	}
}

func TestCaseInsensitive(t *testing.T) {
	for _, in := range []string{"usd", "Usd", "uSd", "usD", "USD", "UsD"} {
		c, err := money.Normalize("currency", in)
		if err != nil || c.Code != "USD" || c.Exponent != 2 {
			t.Errorf("Normalize(%q) = %+v, %v; want USD", in, c, err)
		}
	}
	for _, c := range money.All() {
		for _, in := range []string{strings.ToLower(c.Code), strings.ToLower(c.Code[:1]) + c.Code[1:]} {
			got, ok := money.Lookup(in)
			if !ok || got != c {
				t.Errorf("Lookup(%q) = %+v, %v; want %+v", in, got, ok, c)
			}
		}
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	codes := []string{"usd", "EUR", "kWd", "xxx", "usd1", ""}
	allocs := testing.AllocsPerRun(100, func() {
		for _, code := range codes {
			money.Lookup(code)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run", allocs)
	}
}

func TestTable(t *testing.T) {
	all := money.All()
	if len(all) > 255 {
		t.Fatalf("%d entries do not fit the index (uint8 positions)", len(all))
	}
	if len(all) < 150 {
		t.Fatalf("table has %d currencies, want at least 150", len(all))
	}
	codes := map[string]bool{}
	numerics := map[int]string{}
	for i, c := range all {
		if len(c.Code) != 3 || strings.ToUpper(c.Code) != c.Code || strings.Trim(c.Code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Errorf("bad code %q", c.Code)
		}
		if codes[c.Code] {
			t.Errorf("duplicate code %s", c.Code)
		}
		codes[c.Code] = true
		if other, dup := numerics[c.Numeric]; dup {
			t.Errorf("duplicate numeric %d: %s and %s", c.Numeric, other, c.Code)
		}
		numerics[c.Numeric] = c.Code
		if c.Numeric < 1 || c.Numeric > 999 {
			t.Errorf("%s numeric %d out of range", c.Code, c.Numeric)
		}
		if c.Exponent < 0 || c.Exponent > 4 {
			t.Errorf("%s exponent %d out of range", c.Code, c.Exponent)
		}
		if strings.TrimSpace(c.Name) == "" || strings.TrimSpace(c.Name) != c.Name {
			t.Errorf("%s has bad name %q", c.Code, c.Name)
		}
		if i > 0 && all[i-1].Code >= c.Code {
			t.Errorf("not sorted: %s before %s", all[i-1].Code, c.Code)
		}
		if got, ok := money.Lookup(c.Code); !ok || got != c {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", c.Code, got, ok, c)
		}
	}
	// All returns a copy.
	all[0].Exponent = 9
	all[0].Code = "ZZZ"
	if again := money.All(); again[0].Exponent == 9 || again[0].Code == "ZZZ" {
		t.Error("All returned the table itself, not a copy")
	}
}

func TestCheckAmount(t *testing.T) {
	for _, a := range []int64{1, 2, 1234, money.MaxAmount - 1, money.MaxAmount} {
		if err := money.CheckAmount("amount", a); err != nil {
			t.Errorf("CheckAmount(%d) = %v, want nil", a, err)
		}
	}
	for _, a := range []int64{0, -1, -money.MaxAmount, math.MinInt64, money.MaxAmount + 1, 100_000_000_000, math.MaxInt64} {
		e := wantInvalid(t, money.CheckAmount("refund.amount", a), "refund.amount")
		if !strings.Contains(e.Message, "refund.amount") {
			t.Errorf("CheckAmount(%d) message %q does not name the field", a, e.Message)
		}
	}
	if money.MaxAmount != 99_999_999_999 {
		t.Errorf("MaxAmount = %d", money.MaxAmount)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		amount int64
		code   string
		want   string
	}{
		{1234, "USD", "12.34 USD"},
		{1234, "usd", "12.34 USD"},
		{1000, "JPY", "1000 JPY"},
		{1500, "KWD", "1.500 KWD"},
		{-5, "EUR", "-0.05 EUR"},
		{0, "USD", "0.00 USD"},
		{0, "JPY", "0 JPY"},
		{1, "USD", "0.01 USD"},
		{-1, "JPY", "-1 JPY"},
		{-1000, "JPY", "-1000 JPY"},
		{10, "USD", "0.10 USD"},
		{100, "USD", "1.00 USD"},
		{-123456, "BHD", "-123.456 BHD"},
		{5, "CLF", "0.0005 CLF"},
		{12345, "UYW", "1.2345 UYW"},
		{7, "UYI", "7 UYI"},
		{250000, "KES", "2500.00 KES"},
		{money.MaxAmount, "USD", "999999999.99 USD"},
		{money.MaxAmount, "JPY", "99999999999 JPY"},
		{math.MaxInt64, "USD", "92233720368547758.07 USD"},
		{math.MinInt64, "USD", "-92233720368547758.08 USD"},
		{math.MinInt64, "CLF", "-922337203685477.5808 CLF"},
		{math.MinInt64, "JPY", "-9223372036854775808 JPY"},
	}
	for _, tt := range tests {
		c := mustLookup(t, tt.code)
		if got := money.Format(tt.amount, c); got != tt.want {
			t.Errorf("Format(%d, %s) = %q, want %q", tt.amount, tt.code, got, tt.want)
		}
	}
}

func TestParseMajor(t *testing.T) {
	tests := []struct {
		in   string
		code string
		want int64
	}{
		{"12.34", "USD", 1234},
		{"12.3", "USD", 1230},
		{"12", "USD", 1200},
		{"0", "USD", 0},
		{"0.01", "USD", 1},
		{"-0.05", "EUR", -5},
		{"+1", "USD", 100},
		{"-0", "USD", 0},
		{"007.50", "USD", 750},
		{"1000", "JPY", 1000},
		{"-1000", "JPY", -1000},
		{"1.5", "KWD", 1500},
		{"1.500", "KWD", 1500},
		{"0.001", "BHD", 1},
		{"0.0001", "CLF", 1},
		{"1.2345", "UYW", 12345},
		{"7", "UYI", 7},
		{"12.34 USD", "USD", 1234},
		{"12.34 usd", "USD", 1234},
		{"1000 JPY", "JPY", 1000},
		{"999999999.99", "USD", money.MaxAmount},
		{"92233720368547758.07", "USD", math.MaxInt64},
		{"-92233720368547758.08", "USD", math.MinInt64},
		{"9223372036854775807", "JPY", math.MaxInt64},
		{"-9223372036854775808", "JPY", math.MinInt64},
		{"922337203685477.5807", "CLF", math.MaxInt64},
	}
	for _, tt := range tests {
		c := mustLookup(t, tt.code)
		got, err := money.ParseMajor(tt.in, c)
		if err != nil || got != tt.want {
			t.Errorf("ParseMajor(%q, %s) = %d, %v; want %d", tt.in, tt.code, got, err, tt.want)
		}
	}
}

func TestParseMajorRejects(t *testing.T) {
	tests := []struct {
		in, code string
		msg      string // part of the message
	}{
		{"12.345", "USD", "more than 2 decimals"},
		{"0.001", "USD", "more than 2 decimals"},
		{"1.5", "JPY", "no minor unit"},
		{"1.0", "JPY", "no minor unit"},
		{"1.0000", "KWD", "more than 3 decimals"},
		{"0.00001", "CLF", "more than 4 decimals"},
		{"1.5", "UYI", "no minor unit"},
		{"", "USD", "malformed"},
		{"-", "USD", "malformed"},
		{"+", "USD", "malformed"},
		{".5", "USD", "malformed"},
		{"-.5", "USD", "malformed"},
		{"12.", "USD", "malformed"},
		{"1,000.00", "USD", "malformed"},
		{"1_000", "USD", "malformed"},
		{"1e3", "USD", "malformed"},
		{"0x10", "USD", "malformed"},
		{"1.2.3", "USD", "malformed"},
		{"--1", "USD", "malformed"},
		{"+-1", "USD", "malformed"},
		{" 12", "USD", "malformed"},
		{"12 ", "USD", "malformed"},
		{"12\t", "USD", "malformed"},
		{"١٢", "USD", "malformed"},
		{"NaN", "USD", "malformed"},
		{"Inf", "USD", "malformed"},
		{"12.34 EUR", "USD", "malformed"},
		{"12.34  USD", "USD", "malformed"},
		{"12.34 USD ", "USD", "malformed"},
		{"12.34 XXX", "USD", "malformed"},
		{"92233720368547758.08", "USD", "out of range"},
		{"-92233720368547758.09", "USD", "out of range"},
		{"9223372036854775808", "JPY", "out of range"},
		{"-9223372036854775809", "JPY", "out of range"},
		{"922337203685477.5808", "CLF", "out of range"},
		{"92233720368547759", "USD", "out of range"},
		{"99999999999999999999", "JPY", "out of range"},
		{"184467440737095516160", "JPY", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"/"+tt.code, func(t *testing.T) {
			got, err := money.ParseMajor(tt.in, mustLookup(t, tt.code))
			if got != 0 {
				t.Errorf("ParseMajor(%q) = %d with error, want 0", tt.in, got)
			}
			e := wantInvalid(t, err, "")
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("ParseMajor(%q, %s) message %q, want it to contain %q", tt.in, tt.code, e.Message, tt.msg)
			}
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	amounts := []int64{
		0, 1, -1, 5, -5, 9, 10, -10, 99, 100, -100, 101, 999, 1000, 1001, 1234, -1234,
		10_000, 12_345, 99_999, 1_000_000, money.MaxAmount, -money.MaxAmount, money.MaxAmount + 1,
		math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		amounts = append(amounts, r.Int64N(2*money.MaxAmount)-money.MaxAmount, int64(r.Uint64()))
	}
	for _, c := range money.All() {
		for _, a := range amounts {
			s := money.Format(a, c)
			got, err := money.ParseMajor(s, c)
			if err != nil || got != a {
				t.Fatalf("ParseMajor(Format(%d, %s) = %q) = %d, %v", a, c.Code, s, got, err)
			}
			num, ok := strings.CutSuffix(s, " "+c.Code)
			if !ok {
				t.Fatalf("Format(%d, %s) = %q lacks the code", a, c.Code, s)
			}
			if got, err := money.ParseMajor(num, c); err != nil || got != a {
				t.Fatalf("ParseMajor(%q, %s) = %d, %v; want %d", num, c.Code, got, err, a)
			}
			if strings.ContainsAny(num, "eE,_ ") || (c.Exponent == 0) == strings.Contains(num, ".") {
				t.Fatalf("Format(%d, %s) = %q", a, c.Code, s)
			}
		}
	}
}

// FuzzParseMajor checks that whatever ParseMajor accepts formats back to the
// same amount, and that it never panics.
func FuzzParseMajor(f *testing.F) {
	for _, s := range []string{"12.34", "-0.05", "1000", "1.500", "", ".", "-", "1e3", "92233720368547758.08", "12.34 USD", "0.0001"} {
		f.Add(s, "USD")
		f.Add(s, "JPY")
		f.Add(s, "KWD")
		f.Add(s, "CLF")
	}
	f.Fuzz(func(t *testing.T, s, code string) {
		c, ok := money.Lookup(code)
		if !ok {
			c = money.Currency{Code: "USD", Numeric: 840, Exponent: 2, Name: "US Dollar"}
		}
		a, err := money.ParseMajor(s, c)
		if err != nil {
			if a != 0 || errs.KindOf(err) != errs.KindInvalidArgument {
				t.Fatalf("ParseMajor(%q) = %d, %v", s, a, err)
			}
			return
		}
		back, err := money.ParseMajor(money.Format(a, c), c)
		if err != nil || back != a {
			t.Fatalf("round trip of %q (%d) in %s: %d, %v", s, a, c.Code, back, err)
		}
	})
}
