// Package replayplugin implements the llm-replay plugin: deterministic
// record and replay of provider conversations from a cassette file. In
// replay mode it answers from the cassette and never touches the network;
// in record mode it forwards each request to an OpenAI-compatible
// upstream (through the llm-openai plugin's client) and saves the
// exchange. The cassette format and the matching rules are documented in
// ../README.md and in Cassette.
package replayplugin
