# Preset "docker": Docker Hub image pulls
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   registry-1.docker.io
#   auth.docker.io
#   index.docker.io
#   production.cloudflare.docker.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "docker" {
  description = "Docker Hub image pulls"
  network "docker" {
    endpoint { host = "registry-1.docker.io" }
    endpoint { host = "auth.docker.io" }
    endpoint { host = "index.docker.io" }
    endpoint { host = "production.cloudflare.docker.com" }
  }
}
