# Preset "npm": npm registry: npm, pnpm and yarn installs
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   registry.npmjs.org
#   registry.yarnpkg.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "npm" {
  description = "npm registry: npm, pnpm and yarn installs"
  network "npm" {
    endpoint { host = "registry.npmjs.org" }
    endpoint { host = "registry.yarnpkg.com" }
  }
}
