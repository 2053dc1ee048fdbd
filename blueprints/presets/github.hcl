# Preset "github": GitHub over HTTPS: web, REST/GraphQL API, git clone/fetch, raw and release downloads
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   github.com
#   api.github.com
#   codeload.github.com
#   *.githubusercontent.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "github" {
  description = "GitHub over HTTPS: web, REST/GraphQL API, git clone/fetch, raw and release downloads"
  network "github" {
    endpoint { host = "github.com" }
    endpoint { host = "api.github.com" }
    endpoint { host = "codeload.github.com" }
    endpoint { host = "*.githubusercontent.com" }
  }
}
