// Package bedrockplugin implements the llm-bedrock plugin: an llm.Provider
// over Amazon Bedrock's Converse and ConverseStream operations through the
// AWS SDK for Go v2 (chat, streaming, tool use, images, usage).
//
// Why the SDK rather than hand-written HTTP like llm-openai: every call is
// SigV4-signed with credentials that rotate (EKS Pod Identity, IRSA web
// identity, instance roles, assumed roles), and ConverseStream answers in
// AWS's binary event-stream framing; the SDK does both, and refreshes the
// credentials before they expire.
//
// Credentials come from the SDK's default chain unless the config names a
// static key pair (access_key_id and secret_access_key as credentials);
// role_arn assumes a role on top of either. Files: config.go (the config
// block), plugin.go (the provider and its errors), convert.go (neutral
// types to and from Converse). It is a package so tests serve it
// in-process through plugin.InProcess.
package bedrockplugin
