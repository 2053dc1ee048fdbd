package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

// standinEnv makes the test binary run the stand-in embeddings server
// instead of the tests, so the plugin talks to another process over a
// real socket.
const standinEnv = "NEMOCLAVE_EMBEDDINGS_OPENAI_STANDIN"

const standinKey = "sk-test-0123456789abcdef0123456789"

func TestMain(m *testing.M) {
	if os.Getenv(standinEnv) == "1" {
		runStandin()
		return
	}
	os.Exit(m.Run())
}

// startStandin runs the stand-in and returns its base URL (…/v1).
func startStandin(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{standinEnv + "=1"}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("stand-in did not report its address: %v", err)
	}
	return "http://" + strings.TrimSpace(line) + "/v1"
}

// runStandin serves POST /v1/embeddings as OpenAI does. Behaviour by model:
//   - "flaky": 429 with Retry-After on every other request;
//   - "broken": 500 always;
//   - "missing": 404 model_not_found;
//   - anything else: a deterministic unit vector per text (16 dimensions
//     unless the request asks for fewer), returned in reverse order so
//     only the index says which is which.
//
// GET /v1/_batches reports the batch sizes seen, and the last request's
// extra header X-Test, for the tests to check.
func runStandin() {
	var mu sync.Mutex
	var batches []int
	var lastHeader string
	flaky := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+standinKey {
			code, body := openai.ErrorFor(http.StatusUnauthorized, "Incorrect API key provided: "+r.Header.Get("Authorization"), "invalid_api_key")
			writeJSON(w, code, body)
			return
		}
		var req openai.EmbeddingsRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			code, body := openai.ErrorFor(http.StatusBadRequest, "bad JSON: "+err.Error(), "")
			writeJSON(w, code, body)
			return
		}
		var inputs []string
		if err := json.Unmarshal(req.Input, &inputs); err != nil {
			var one string
			if json.Unmarshal(req.Input, &one) != nil {
				code, body := openai.ErrorFor(http.StatusBadRequest, "input must be a string or an array of strings", "")
				writeJSON(w, code, body)
				return
			}
			inputs = []string{one}
		}
		mu.Lock()
		batches = append(batches, len(inputs))
		lastHeader = r.Header.Get("X-Test")
		flaky++
		odd := flaky%2 == 1
		mu.Unlock()
		switch req.Model {
		case "flaky":
			if odd {
				w.Header().Set("Retry-After", "0")
				code, body := openai.ErrorFor(http.StatusTooManyRequests, "slow down", "rate_limit_exceeded")
				writeJSON(w, code, body)
				return
			}
		case "broken":
			code, body := openai.ErrorFor(http.StatusInternalServerError, "internal failure", "")
			writeJSON(w, code, body)
			return
		case "missing":
			code, body := openai.ErrorFor(http.StatusNotFound, "The model `missing` does not exist", "model_not_found")
			writeJSON(w, code, body)
			return
		}
		dims := 16
		if req.Dimensions > 0 && req.Dimensions < dims {
			dims = req.Dimensions
		}
		resp := openai.EmbeddingsResponse{Object: "list", Model: req.Model + "-served"}
		for i := len(inputs) - 1; i >= 0; i-- {
			v := fakeVector(inputs[i], dims)
			var emb any = v
			if req.EncodingFormat == "base64" {
				b := make([]byte, 4*len(v))
				for j, x := range v {
					binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
				}
				emb = base64.StdEncoding.EncodeToString(b)
			}
			resp.Data = append(resp.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: emb})
			resp.Usage.PromptTokens += int64(len(strings.Fields(inputs[i])))
		}
		resp.Usage.TotalTokens = resp.Usage.PromptTokens
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /v1/_batches", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"batches": batches, "x_test": lastHeader})
		batches = nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	http.Serve(l, mux)
}

// fakeVector is a deterministic unit vector for text.
func fakeVector(text string, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d:%s", i, text)
		x := float64(h.Sum32())/math.MaxUint32 - 0.5
		v[i] = float32(x)
		norm += x * x
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(norm))
	}
	return v
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
