# Preset "huggingface": Hugging Face Hub: model and dataset downloads
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   huggingface.co
#   *.huggingface.co
#   *.hf.co
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "huggingface" {
  description = "Hugging Face Hub: model and dataset downloads"
  network "huggingface" {
    endpoint { host = "huggingface.co" }
    endpoint { host = "*.huggingface.co" }
    endpoint { host = "*.hf.co" }
  }
}
