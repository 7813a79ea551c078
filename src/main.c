#include "build_config.h"
int main(void){return 0;}
