"""A card's evaluation metrics as chart descriptions for plotly (drawn by
static/modelcards/charts.js) and as table rows for the values no chart shows."""


def evaluation_charts(content: dict) -> dict:
    """{"charts": [{id, title, kind, ...data}], "values": [(evaluation, group, name, value,
    notes)]}. Number metrics of a group share one bar chart; each graph metric gets its own."""
    charts, values = [], []
    for evaluation in content.get("evaluation_details", []):
        for group in evaluation.get("metric_groups", []):
            title = f"{evaluation['name']} · {group['name']}"
            numbers = [m for m in group.get("metric_data", []) if m.get("type") == "number"]
            if numbers:
                charts.append(
                    {
                        "kind": "bar",
                        "title": title,
                        "x": [m["name"] for m in numbers],
                        "y": [m["value"] for m in numbers],
                    }
                )
            for metric in group.get("metric_data", []):
                kind, value = metric.get("type"), metric.get("value")
                if kind in {"number", "string", "boolean"}:
                    shown = ("yes" if value else "no") if kind == "boolean" else value
                    values.append(
                        (
                            evaluation["name"],
                            group["name"],
                            metric["name"],
                            shown,
                            metric.get("notes", ""),
                        )
                    )
                    continue
                chart = {
                    "title": f"{title} · {metric['name']}",
                    "x_title": axis_title(metric.get("x_axis_name")),
                    "y_title": axis_title(metric.get("y_axis_name")),
                }
                if kind == "linear_graph":
                    chart |= {
                        "kind": "line",
                        "x": [point[0] for point in value],
                        "y": [point[1] for point in value],
                    }
                elif kind == "bar_chart":
                    labels = metric.get("x_axis_name")
                    if not isinstance(labels, list) or len(labels) != len(value):
                        labels = [str(index + 1) for index in range(len(value))]
                    chart |= {"kind": "bar", "x": labels, "y": value, "x_title": ""}
                elif kind == "matrix":
                    chart |= {
                        "kind": "heatmap",
                        "z": value,
                        "x": axis_labels(metric.get("x_axis_name"), len(value[0])),
                        "y": axis_labels(metric.get("y_axis_name"), len(value)),
                        "x_title": "",
                        "y_title": "",
                    }
                else:
                    continue
                charts.append(chart)
    for number, chart in enumerate(charts, start=1):
        chart["id"] = f"metric-chart-{number}"
    return {"charts": charts, "values": values}


def axis_title(name: object) -> str:
    return name if isinstance(name, str) else ""


def axis_labels(names: object, count: int) -> list[str]:
    if isinstance(names, list) and len(names) == count:
        return [str(name) for name in names]
    return [str(index + 1) for index in range(count)]
