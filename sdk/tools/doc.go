// Package tools is the SDK for tools plugins: the Provider interface
// authors implement (list tools described by JSON Schema, call one), the
// optional Watcher interface for tool lists that change at run time, their
// Go-native types, and the gRPC adapters sdk/plugin wires.
//
// The shapes follow the Model Context Protocol closely so an MCP server
// maps onto a tools plugin without loss. The package must not import
// sdk/plugin (plugin imports it to register the kind).
package tools
