policy "x" {
  presets = ["github"]
  network "github" {
    endpoint {
      host = "gitlab.com"
    }
  }
}

sandbox "s" {
  policy = policy.x
}
