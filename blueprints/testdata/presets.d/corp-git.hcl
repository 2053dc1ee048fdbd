# Preset "corp-git": the company's Git server.
preset "corp-git" {
  description = "Corporate Git over HTTPS"
  network "corp-git" {
    endpoint {
      host          = "git.corp.example"
      allow_private = true
    }
  }
}
