policy "x" {
  presets = ["github"]
  network "gh-api" {
    endpoint {
      host    = "api.github.com"
      inspect = true
      allow {
        methods = ["GET"]
      }
    }
  }
}

sandbox "s" {
  policy = policy.x
}
