policy "x" {
  presets = ["pypi", "npm", "github", "huggingface", "docker", "telegram", "slack", "discord", "jira", "outlook", "nvidia", "openai", "anthropic", "ollama-local"]
}

sandbox "s" {
  policy = policy.x
}
