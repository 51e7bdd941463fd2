"""What machine a measurement ran on, for the benchmark scripts' results."""
import platform


def cpu_name():
    """The CPU's name with its family and model: "AMD EPYC" alone names several generations."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor()
    name = fields.get("model name", platform.processor())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name
