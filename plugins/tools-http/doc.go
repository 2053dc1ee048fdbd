// Command nemoclave-plugin-tools-http is a built-in tools plugin that gives
// an agent one tool, fetch_url: fetch a web page or file and return it as
// readable text.
//
// Every request goes through the proxy named by HTTP_PROXY/HTTPS_PROXY (and
// NO_PROXY) in the plugin's environment, read once at Configure. The host
// points those at the egress proxy with the plugin's own policy, so this
// plugin decides nothing about where it may connect: the proxy does. Without
// a proxy in the environment it connects directly, which is only for tests
// and local development.
//
// Responses are handled by content type: HTML becomes Markdown-like text
// (headings, lists, links, code blocks kept; scripts, styles and markup
// dropped) by walking golang.org/x/net/html's parse tree; other text is
// decoded from its charset to UTF-8; images are returned as images; other
// binary content is described, not dumped. Bodies are capped at max_bytes
// and long texts are paged with start_index/max_length.
//
// This package owns the fetch and the conversion. It must not cache or
// store anything and must not bypass the environment's proxy.
package main
