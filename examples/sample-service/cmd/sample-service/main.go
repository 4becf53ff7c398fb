// Command sample-service serves the items API behind bearer-token authentication.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"example.com/sample-service/internal/api"
	"example.com/sample-service/internal/auth"
	"example.com/sample-service/internal/session"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	idle := flag.Duration("session-idle", 30*time.Minute, "drop sessions idle for longer than this")
	flag.Parse()

	sessions := session.NewStore(*idle, time.Now)
	go func() {
		for range time.Tick(time.Minute) {
			sessions.Sweep()
		}
	}()
	handler := &auth.Handler{Sessions: sessions, Next: api.Routes(api.NewItems())}
	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("sample-service listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
