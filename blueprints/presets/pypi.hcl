# Preset "pypi": Python Package Index: pip, uv and poetry installs
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   pypi.org
#   files.pythonhosted.org
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "pypi" {
  description = "Python Package Index: pip, uv and poetry installs"
  network "pypi" {
    endpoint { host = "pypi.org" }
    endpoint { host = "files.pythonhosted.org" }
  }
}
