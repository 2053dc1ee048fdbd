# An assistant on Azure OpenAI with no key anywhere: on AKS with Workload
# Identity the daemon's federated token is exchanged for a Microsoft Entra
# ID token, refreshed before it expires, by the llm-azure-openai plugin
# alone. The identity needs the role "Cognitive Services OpenAI User" on
# the account (docs/inference.md, "Azure OpenAI").
nemoclave {
  required_version = ">= 0.1"
}

plugin "llm" "azure" {
  source = "builtin/llm-azure-openai"
  config {
    endpoint    = "https://corp-openai.openai.azure.com"
    deployments = { "gpt-4o" = "gpt-4o-prod", "gpt-4o-mini" = "gpt-4o-mini-prod" }
    auth        = "workload_identity"
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

inference {
  default = "gpt"
  model "gpt" {
    provider = plugin.llm.azure
    model    = "gpt-4o"
    fallback = ["mini"]
  }
  model "mini" {
    provider = plugin.llm.azure
    model    = "gpt-4o-mini"
  }
}

policy "assistant" {
  presets = ["pypi", "github"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks", ".bashrc"]
  }
  landlock {
    min_abi = 3
  }
  unknown_hosts = "ask"
}

sandbox "assistant" {
  policy    = policy.assistant
  workspace = "./workspace"
}

agent "assistant" {
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
  tools   = [plugin.tools.files]
}
