// Command webhookreceiver is a merchant's webhook endpoint in a few lines:
// it verifies each request's Standard Webhooks signature with the secret
// the platform returned at CreateWebhookEndpoint (WEBHOOK_SECRET), drops
// events it has seen (by webhook-id, the event's id), and prints the rest.
//
//	WEBHOOK_SECRET=whsec_... go run ./examples/webhookreceiver -addr 127.0.0.1:9999
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9999", "where to listen")
	flag.Parse()
	wh, err := standardwebhooks.NewWebhook(os.Getenv("WEBHOOK_SECRET"))
	if err != nil {
		log.Fatalf("WEBHOOK_SECRET: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		// Verify checks the signature (any of the space-separated ones, so
		// a secret rotation's overlap is transparent) and that the
		// timestamp is within 5 minutes, against replays.
		if err := wh.Verify(body, r.Header); err != nil {
			log.Printf("refused: %v", err)
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var ev struct {
			ID, Type, ObjectID string
			Sequence           string
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		mu.Lock()
		dup := seen[ev.ID]
		seen[ev.ID] = true
		mu.Unlock()
		if !dup {
			fmt.Printf("%s %s %s (sequence %s)\n", ev.ID, ev.Type, ev.ObjectID, ev.Sequence)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("listening on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
