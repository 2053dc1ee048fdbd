// Package openaiplugin implements the llm-openai plugin: an llm.Provider
// that calls an OpenAI-compatible Chat Completions API over HTTP. It is the
// only place the provider key is used: the host resolves the api_key
// credential reference and passes the value in the config, and this
// package sends it as a bearer token and redacts it from every error.
//
// It is a package (not only package main) so the gateway's tests can serve
// it in-process through plugin.InProcess.
package openaiplugin
