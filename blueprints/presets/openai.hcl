# Preset "openai": OpenAI API
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   api.openai.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "openai" {
  description = "OpenAI API"
  network "openai" {
    endpoint { host = "api.openai.com" }
  }
}
