# An assistant on a local Ollama server. The model is reached by the llm
# plugin on the host side (through the gateway), so the sandbox needs no
# network access at all.
nemoclave {
  required_version = ">= 0.1"
}

variable "ollama_url" {
  type        = string
  default     = env("OLLAMA_HOST", "http://127.0.0.1:11434")
  description = "Where Ollama listens; OLLAMA_HOST overrides it."
}

variable "model" {
  type    = string
  default = "llama3.1"
}

plugin "llm" "ollama" {
  source = "builtin/llm-openai"
  config {
    base_url = "${var.ollama_url}/v1"
    timeout  = "300s"
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

inference {
  default = "local"
  model "local" {
    provider = plugin.llm.ollama
    model    = var.model
  }
}

policy "offline" {
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
  }
  unknown_hosts = "deny"
}

sandbox "assistant" {
  policy    = policy.offline
  workspace = "./workspace"
}

agent "assistant" {
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
  tools   = [plugin.tools.files]
}
