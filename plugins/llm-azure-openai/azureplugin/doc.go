// Package azureplugin implements the llm-azure-openai plugin: an
// llm.Provider over Azure OpenAI deployments
// (/openai/deployments/{deployment}/chat/completions?api-version=…),
// authenticated with Microsoft Entra ID tokens from azidentity (AKS
// workload identity, managed identity, a client secret, or the default
// chain) or with an api-key.
//
// Why a plugin of its own rather than a mode of llm-openai: the URL shape
// (deployment in the path, api-version in the query) and the credential
// (a token that rotates, or an api-key header) differ from every other
// OpenAI-compatible server, and azidentity with MSAL would otherwise be
// linked into llm-openai's binary for everyone. The wire format is the
// same, so the request and response translation is shared through
// internal/wire/openai.
//
// Tokens: azidentity's credentials cache the token and fetch a new one
// before it expires (MSAL treats a token within five minutes of expiry as
// expired, and refreshes long-lived ones at half their life), so the
// plugin asks for a token on every call and gets the cached one.
//
// Files: config.go (the config block), auth.go (credentials), plugin.go
// (the provider).
package azureplugin
