# Preset "discord": Discord API, gateway (websocket, *.discord.gg) and CDN
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   discord.com
#   *.discord.gg
#   cdn.discordapp.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "discord" {
  description = "Discord API, gateway (websocket, *.discord.gg) and CDN"
  network "discord" {
    endpoint { host = "discord.com" }
    endpoint { host = "*.discord.gg" }
    endpoint { host = "cdn.discordapp.com" }
  }
}
