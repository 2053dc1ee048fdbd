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
	script := flag.String("script", "", "a JSON Script file: play the model for one agent task")
	flag.Parse()
	o := testupstream.Options{Key: *key, ReplyBytes: *reply}
	if *script != "" {
		sc, err := testupstream.LoadScript(*script)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testupstream:", err)
			os.Exit(1)
		}
		o.Script = sc
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: testupstream.Handler(o)}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
}
