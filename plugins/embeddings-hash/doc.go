// Command nemoclave-plugin-embeddings-hash is a built-in embeddings plugin:
// a deterministic lexical embedding by feature hashing of word n-grams and
// character n-grams, signed, sublinearly weighted and L2-normalised.
//
// It needs no model weights and no network, so it runs offline and in tests,
// and similar texts (shared words, shared word pieces) get nearby vectors.
// It is not a semantic model: synonyms with no shared characters are far
// apart. Use embeddings-openai for a real model.
package main
