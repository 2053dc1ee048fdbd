package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
)

// InProcess serves p over a real gRPC connection inside the test process
// and returns the host-side Client, broker included, so wiring and host
// services work as they do across processes. Used by sdktest.
func InProcess(t testing.TB, p Plugin) *Client {
	t.Helper()
	if err := checkKinds(p); err != nil {
		t.Fatal(err)
	}
	// The server is not stopped: go-plugin's GRPCServer.Stop races with its
	// own Serve in this harness. Closing the client ends the connection and
	// the server's goroutines idle until the test binary exits.
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{pluginName: &grpcPlugin{impl: p}})
	// The harness listens on a socket in the temp dir that the never
	// stopped server would leave behind: remove it once the client is done.
	sock := strings.TrimPrefix(client.Conn.Target(), "unix:")
	var c *Client
	t.Cleanup(func() {
		// Close stops the server (go-plugin's Shutdown call) and the
		// host's broker; wait for the host services' listener so that its
		// socket is gone before the test binary exits.
		if c != nil {
			c.quiesceHost()
		}
		client.Close()
		if c != nil {
			c.closeHost()
		}
		if strings.HasPrefix(filepath.Base(sock), "plugin") && filepath.Dir(sock) == filepath.Clean(os.TempDir()) {
			_ = os.Remove(sock)
		}
	})
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	c = raw.(*Client)
	return c
}
