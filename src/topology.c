/* placeholder: being written */
#include "build_config.h"
extern int sp_placeholder_topology;
