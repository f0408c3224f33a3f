"""Test data the unit and the stack tests share: user agents of real browsers and bots,
and the referrer cases of the sources rule."""

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
ANDROID_PHONE_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")

PAGE = "https://shop.test/pricing"
UNTAGGED = ("(none)", "(none)", "(none)")  # utm_source, utm_medium, utm_campaign
# (url, referrer, referrer source, utm_source, utm_medium, utm_campaign)
SOURCE_CASES = [
    (PAGE, None, "direct", *UNTAGGED),
    (PAGE, "", "direct", *UNTAGGED),
    (PAGE, "https://shop.test/", "internal", *UNTAGGED),
    (PAGE, "https://SHOP.test:443/cart", "internal", *UNTAGGED),
    (PAGE, "https://www.google.com/search?q=x", "search", *UNTAGGED),
    (PAGE, "https://www.google.co.uk/", "search", *UNTAGGED),
    (PAGE, "https://duckduckgo.com/", "search", *UNTAGGED),
    (PAGE, "https://notduckduckgo.com/", "other sites", *UNTAGGED),
    (PAGE, "https://t.co/abc", "social", *UNTAGGED),
    (PAGE, "https://old.reddit.com/r/x", "social", *UNTAGGED),
    (PAGE, "https://mastodon.social/@x", "social", *UNTAGGED),
    (PAGE, "https://blog.example.org/post", "other sites", *UNTAGGED),
    (PAGE, "android-app://com.slack/", "other sites", *UNTAGGED),
    (PAGE + "?utm_source=news&utm_medium=email&utm_campaign=bf", "https://www.google.com/",
     "campaign", "news", "email", "bf"),
    (PAGE + "?gclid=abc", None, "campaign", *UNTAGGED),
    (PAGE + "?utm_campaign=spring%20sale&utm_source=a+b", None, "campaign", "a b", "(none)", "spring sale"),
    (PAGE + "?utm_source=first&utm_source=second", None, "campaign", "first", "(none)", "(none)"),
    (PAGE + "?utm_source=&utm_medium=cpc", "https://bing.com/", "search", "(none)", "cpc", "(none)"),
    (PAGE + "?x=1#utm_source=fragment", None, "direct", *UNTAGGED),
    (PAGE + "?xutm_source=no", None, "direct", *UNTAGGED),
]
