# Preset "ollama-local": an Ollama server on the machine running the sandbox
#
# Allows plain HTTP to port 11434 (Ollama's default) on exactly these hosts:
#   localhost
#   127.0.0.1
# allow_private is set so the gateway does not refuse the private
# address; the gateway still refuses loopback for sandboxes unless its
# operator routes host services in, so prefer an inference route
# (plugin "llm" with base_url = "http://127.0.0.1:11434/v1"), which runs on
# the host side and needs no sandbox egress at all.
preset "ollama-local" {
  description = "Ollama on the local machine (HTTP, port 11434)"
  network "ollama-local" {
    endpoint {
      host          = "localhost"
      port          = 11434
      allow_private = true
      allow_opaque  = true
    }
    endpoint {
      host          = "127.0.0.1"
      port          = 11434
      allow_private = true
      allow_opaque  = true
    }
  }
}
