"""The HTML template of the study report (Jinja2, autoescaped; tables arrive pre-rendered)."""

from __future__ import annotations

__all__ = ["HTML_TEMPLATE"]

HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
         max-width: 1200px; padding: 0 1.5em; color: #222; line-height: 1.45; }
  h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
  h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
  h3 { margin-top: 1.5em; color: #333; }
  table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .85em; }
  th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
  th { background: #f0f0f0; }
  td:first-child, th:first-child { text-align: left; }
  .note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em 1em; }
  .verdicts li, .answer li { margin: .3em 0; }
  figure { margin: 1em 0; }
  figure img { max-width: 100%; border: 1px solid #ddd; }
  figcaption { font-size: .85em; color: #555; }
  dt { font-weight: bold; }
  dd { margin: 0 0 .5em 1.5em; }
  code { background: #f4f4f4; padding: 0 .2em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if answers %}
<h2>The answer</h2>
{% for answer in answers %}
<h3>{{ answer.task }}</h3>
<ul class="answer">
{% for line in answer.lines %}  <li>{{ line | replace("**", "") }}</li>
{% endfor %}</ul>
{{ answer.html | safe }}
{% endfor %}
{% endif %}
{% if verdict_rules %}
<p><strong>How verdicts are decided.</strong> {{ verdict_rules }}</p>
{% endif %}
{% if cost_rule %}
<p><strong>How costs are measured.</strong> {{ cost_rule }}</p>
{% endif %}
{% for note in notes %}<p class="note">{{ note }}</p>
{% endfor %}
<h2>Protocol</h2>
{{ protocol_html | safe }}
{% for section in sections %}
<h2>{{ section.heading }}</h2>
{% for note in section.notes %}<p class="note">{{ note }}</p>
{% endfor %}
{% for table in section.tables %}
<h3>{{ table.title }}</h3>
{% if table.caption %}<p>{{ table.caption }}</p>{% endif %}
{{ table.html | safe }}
{% endfor %}
{% if section.verdicts %}
<h3>Verdicts</h3>
<ul class="verdicts">
{% for line in section.verdicts %}  <li>{{ line }}</li>
{% endfor %}</ul>
{% endif %}
{% for figure in section.figures %}
<figure>
  <h3>{{ figure.title }}</h3>
  {% if figure.data %}<img alt="{{ figure.title }}" src="data:image/png;base64,{{ figure.data }}">
  {% else %}<p class="note">Figure not available.</p>{% endif %}
  {% if figure.caption %}<figcaption>{{ figure.caption }}</figcaption>{% endif %}
</figure>
{% endfor %}
{% endfor %}
<h2>How MAE is computed</h2>
<p>{{ mae_definition }}</p>
<h2>Glossary</h2>
<dl>
{% for term, meaning in glossary %}  <dt>{{ term }}</dt><dd>{{ meaning }}</dd>
{% endfor %}</dl>
</body>
</html>
"""
