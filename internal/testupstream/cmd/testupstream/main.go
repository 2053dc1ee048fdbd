// Command testupstream serves the deterministic provider stand-in of
// package testupstream on a TCP address and prints "listening on <url>".
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/nemoclave/nemoclave/internal/testupstream"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	key := flag.String("key", "", "the only API key accepted (empty: any)")
	reply := flag.Int("reply-bytes", 0, "pad plain answers to about this many bytes")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: testupstream.Handler(testupstream.Options{Key: *key, ReplyBytes: *reply})}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
}
