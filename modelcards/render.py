"""Card text as safe HTML: Markdown rendered with raw HTML off, then sanitised by nh3.

Two locks, because either alone has failed somewhere before: markdown-it escapes any HTML a
writer typed and refuses javascript: links, and nh3 keeps only the tags, attributes and URL
schemes a card needs. Templates still wrap the result in an element with `hx-disable`.
"""

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "s",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)
# A card's headings sit under the page's own h2s: shift # and ## down to h3.
markdown.renderer.rules["heading_open"] = lambda tokens, index, options, env: (
    f"<h{max(3, int(tokens[index].tag[1]) + 2)}>"
)
markdown.renderer.rules["heading_close"] = lambda tokens, index, options, env: (
    f"</h{max(3, int(tokens[index].tag[1]) + 2)}>"
)


def render_markdown(text: str) -> SafeString:
    """Markdown written by a person, as HTML that cannot run anything."""
    html = markdown.render(text or "")
    cleaned = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 (nh3 has just sanitised it)
