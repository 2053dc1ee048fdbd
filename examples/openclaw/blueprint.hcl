# OpenClaw (npm package openclaw, Node >= 26.1) in a sandbox. Its model
# calls go through the gateway's /v1/chat/completions to the provider
# below, whose key only the gateway holds: `nemoclave agent-config
# openclaw` writes OpenClaw's configuration inside the sandbox (a provider
# at $OPENAI_BASE_URL with a placeholder key, /workspace as workspace, the
# blueprint's tools as an MCP server). Store the key with the host as
# OPENAI_API_KEY. TestAgents/openclaw runs this file.
variable "node_modules" {
  type    = string
  default = "/usr/local/lib/node_modules" # where `npm install -g openclaw` put it: npm root -g
}

variable "node_dir" {
  type    = string
  default = "/opt/node" # the Node >= 26.1 installation (not the system one under /usr): its bin/node runs OpenClaw
}

variable "base_url" {
  type    = string
  default = "https://api.openai.com/v1"
}

variable "task" {
  type    = string
  default = "Create openclaw.txt in the workspace saying hello"
}

plugin "llm" "openai" {
  source = "builtin/llm-openai"
  config {
    base_url = var.base_url
    api_key  = credential("OPENAI_API_KEY")
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
  config {
    root = "${path.blueprint}/workspace"
  }
}

inference {
  default = "default"
  model "default" {
    provider = plugin.llm.openai
    model    = "gpt-4.1"
  }
}

policy "openclaw" {
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc", var.node_modules, var.node_dir]
    read_write = ["/workspace", "/tmp"]
  }
  unknown_hosts = "deny"
}

sandbox "openclaw" {
  driver    = "local"
  policy    = policy.openclaw
  workspace = "./workspace"
  environment = {
    TASK         = var.task
    NODE_MODULES = var.node_modules
    NODE_DIR     = var.node_dir
  }
}

# One headless agent turn (`openclaw agent exec`); the shell expands the
# variables, which nemoclave itself never does.
agent "openclaw" {
  sandbox = sandbox.openclaw
  tools   = [plugin.tools.files]
  command = ["/bin/sh", "-c", "nemoclave agent-config openclaw --write \"$HOME/.openclaw/openclaw.json\" && exec \"$NODE_DIR/bin/node\" \"$NODE_MODULES/openclaw/openclaw.mjs\" agent exec --config \"$HOME/.openclaw/openclaw.json\" --cwd /workspace --model nemoclave/default \"$TASK\""]
}
